package sealpost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
	"github.com/sealpost/sealpost/proto/statepb"
)

// Accounts: a person with several devices (docs/SPEC.md §22.4-22.8).
//
// A Device may belong to an account: NewAccount makes one (the account
// key and a first device list naming this device), and linking (link.go)
// adds devices to it. Peers pin an account's key and its newest verified
// device list, one record per account ("account/<user>"), read from the
// store the first time the account is needed. The pinned list decides who
// an account's devices are:
//
//   - Nothing is encrypted to a device the list does not name with that
//     identity (StartSession, Send and SendUser refuse it with
//     ErrUnlistedDevice), whatever bundle the relay hands out: the relay
//     cannot add a "ghost device" without the user's account key.
//   - Nothing from such a device is accepted either (Receive returns
//     ErrUnlistedDevice, changing nothing): a removed device can no longer
//     speak for the account.
//   - A list replaces the pinned one only if keys.DeviceList.Follows
//     allows it: a list signed by another key, older, forked or not
//     chaining is refused with its typed error and kept as an
//     AccountFinding, and the pinned list stays.
//
// Decision: contents carry lists in-band. Every content says which
// version of the sender's own list and of the recipient's list the sender
// holds, and carries the sender's whole signed list (at most
// keys.MaxDeviceListSize bytes) until the recipient has said it holds that
// version. So a peer learns of a device added or removed with the next
// content it receives from any of the account's devices, without trusting
// the relay to serve the newest list, and a new device proves itself with
// its first message. A receiver that learns a newer version exists than
// it holds (of the sender's account or its own) is told so in
// Incoming.Refresh, and the app fetches the list from the relay.
//
// Decision: an account is pinned on first use, from the first list the
// app hands UpdateDeviceList or that a peer's content carries (and that
// names its sender), as identities are; safety numbers are computed over
// account keys once both sides have one, so they stay the same when a
// device is added or removed. Our own account is never pinned from a
// content: only NewAccount and an authenticated provisioning (link.go)
// set it, so the relay cannot make a device believe a list of its own.

// maxAccountFindings bounds the findings an account record keeps, oldest
// dropped first.
const maxAccountFindings = 32

// DefaultDeviceListLifetime is how long a device list that this device
// signs is valid; a device holding the account key renews it
// (RenewDeviceList) before it expires.
const DefaultDeviceListLifetime = 30 * 24 * time.Hour

// account is one pinned account: ours or a peer's.
type account struct {
	user       string
	key        keys.PublicAccountKey
	list       *keys.DeviceList // the newest verified list; nil while only the key is pinned
	minVersion uint64           // no list older than this is accepted
	findings   []*statepb.AccountFinding
}

func accountKey(user string) string { return record.KeyAccountPrefix + user }

// version returns the version of the pinned list, 0 for none.
func (a *account) version() uint64 {
	if a == nil || a.list == nil {
		return 0
	}
	return a.list.Version
}

// clone returns a copy to change and commit; a is left as committed.
func (a *account) clone() *account {
	c := *a
	c.findings = slices.Clone(a.findings)
	return &c
}

// lists reports whether the pinned list names the device at addr with id.
func (a *account) lists(addr Address, id keys.PublicIdentity) bool {
	return a != nil && a.list != nil && addr.User == a.user && listsDevice(a.list, addr, id)
}

// vouch returns nil when nothing is pinned for the account of addr (a
// peer without an account: identities decide, as before) or its list
// names addr with id, and ErrUnlistedDevice otherwise.
func (a *account) vouch(addr Address, id keys.PublicIdentity) error {
	switch {
	case a == nil:
		return nil
	case a.list == nil:
		return fmt.Errorf("%w: the device list of %s is not known yet (UpdateDeviceList)", ErrUnlistedDevice, addr.User)
	case !a.lists(addr, id):
		return fmt.Errorf("%w: %s with this identity is not in version %d of the list", ErrUnlistedDevice, addr, a.list.Version)
	}
	return nil
}

// addFinding appends f, dropping the oldest beyond the bound.
func (a *account) addFinding(f *statepb.AccountFinding) {
	a.findings = append(a.findings, f)
	if n := len(a.findings) - maxAccountFindings; n > 0 {
		a.findings = slices.Delete(a.findings, 0, n)
	}
}

// parseStoredList decodes a list read back from the store. It was verified
// when it was pinned; its expiry matters when it is used to send
// (SendUser), not when it is read, so it is parsed as of its own issue.
func parseStoredList(raw []byte) (*keys.DeviceList, error) {
	return keys.ParseDeviceList(raw, keys.WithClock(func() time.Time { return time.Unix(1, 0) }))
}

// encodeAccount returns the account record.
func encodeAccount(a *account) ([]byte, error) {
	rec := &statepb.Account{Version: record.Layout, User: a.user, AccountKey: a.key.Bytes(),
		MinVersion: a.minVersion, Findings: a.findings}
	if a.list != nil {
		rec.List = a.list.Bytes()
	}
	return pbstrict.Marshal(rec)
}

// decodeAccount decodes the account record of user.
func decodeAccount(raw []byte, user string) (*account, error) {
	rec := new(statepb.Account)
	if err := record.DecodeVersioned(raw, rec, func() uint32 { return rec.Version }, "saved account"); err != nil {
		return nil, err
	}
	if rec.User != user || len(rec.Findings) > maxAccountFindings {
		return nil, fmt.Errorf("%w: saved account of %q", ErrMalformed, user)
	}
	for _, f := range rec.Findings {
		if findingKind(f.Kind) == 0 || len(f.Names) > len(f.Devices) || len(f.Devices) > keys.MaxDevices || len(f.Evidence) > 2 {
			return nil, fmt.Errorf("%w: saved account finding", ErrMalformed)
		}
	}
	key, err := keys.ParsePublicAccountKey(rec.AccountKey)
	if err != nil {
		return nil, fmt.Errorf("%w: saved account key", ErrMalformed)
	}
	a := &account{user: user, key: key, minVersion: rec.MinVersion, findings: rec.Findings}
	if len(rec.List) > 0 {
		if a.list, err = parseStoredList(rec.List); err != nil {
			return nil, fmt.Errorf("%w: saved device list: %w", ErrMalformed, err)
		}
		if !a.list.Account.Equal(key) {
			return nil, fmt.Errorf("%w: saved device list of another account key", ErrMalformed)
		}
	}
	return a, nil
}

// putAccount adds a's record to b.
func putAccount(b *Batch, a *account) error {
	raw, err := encodeAccount(a)
	if err != nil {
		return err
	}
	putRecord(b, accountKey(a.user), raw)
	return nil
}

// accountOf returns the pinned account of user, reading it from the store
// on first use; nil when none is pinned.
func (d *Device) accountOf(ctx context.Context, user string) (*account, error) {
	if a, ok := d.accounts[user]; ok {
		return a, nil
	}
	raw, err := getRecord(ctx, d.store, accountKey(user))
	if errors.Is(err, ErrNotFound) {
		d.accounts[user] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a, err := decodeAccount(raw, user)
	if err != nil {
		return nil, err
	}
	d.accounts[user] = a
	return a, nil
}

// own returns our own account (nil without one); Open reads it.
func (d *Device) own() *account { return d.accounts[d.self.User] }

// DeviceChange is what a newer device list of an account changed.
type DeviceChange struct {
	User    string
	Version uint64
	// First is set when the list is the first one pinned for the account.
	First          bool
	Added, Removed []keys.ListedDevice
}

// AccountFindingKind says what an AccountFinding reports.
type AccountFindingKind uint8

// The kinds of account findings.
const (
	// DeviceAdded and DeviceRemoved: a newer list added or removed
	// devices. Every peer sees every change; the app shows it ("a device
	// was added: name, time").
	DeviceAdded AccountFindingKind = iota + 1
	DeviceRemoved
	// ListRefused: a list was refused (Reason says why; Evidence holds
	// it): a bad signature, another account key, an older version, a list
	// that does not chain, an expired one.
	ListRefused
	// ListFork: two validly signed lists with the same version (Evidence
	// holds both): the relay serves two histories, or the account key was
	// stolen.
	ListFork
	// AccountKeyTrusted: the app accepted a new account key (TrustAccount,
	// here or on our other device).
	AccountKeyTrusted
	// AccountKeyChanged: a list signed by another account key than the
	// pinned one arrived (Evidence holds it): the identity change of an
	// account, refused until the app accepts it with TrustAccount.
	AccountKeyChanged
)

// String returns the kind's name.
func (k AccountFindingKind) String() string {
	switch k {
	case DeviceAdded:
		return "device added"
	case DeviceRemoved:
		return "device removed"
	case ListRefused:
		return "device list refused"
	case ListFork:
		return "device list fork"
	case AccountKeyTrusted:
		return "account key trusted"
	case AccountKeyChanged:
		return "account key changed"
	}
	return fmt.Sprintf("AccountFindingKind(%d)", uint8(k))
}

// findingKind returns the kind a saved finding names (0 for none).
func findingKind(k uint32) AccountFindingKind {
	for _, kind := range []AccountFindingKind{DeviceAdded, DeviceRemoved, ListRefused, ListFork, AccountKeyTrusted, AccountKeyChanged} {
		if uint32(kind) == k {
			return kind
		}
	}
	return 0
}

// AccountFinding is something noticed about an account's device lists.
type AccountFinding struct {
	User    string
	Kind    AccountFindingKind
	Version uint64 // the list version it concerns
	At      time.Time
	Devices []keys.ListedDevice // added or removed (DeviceRemoved: as the older list named them)
	Reason  string              // why a list was refused
	// Evidence holds the refused list, or a fork's two lists, as signed.
	Evidence [][]byte
}

// newFinding returns a finding record about version.
func (d *Device) newFinding(kind AccountFindingKind, version uint64) *statepb.AccountFinding {
	return &statepb.AccountFinding{Kind: uint32(kind), Version: version, AtUnixNano: d.opts.now().UnixNano()}
}

// refusal returns the finding of a refused list raw with err.
func (d *Device) refusal(err error, raw []byte, l *keys.DeviceList) *statepb.AccountFinding {
	var fork *keys.ForkError
	if errors.As(err, &fork) {
		f := d.newFinding(ListFork, fork.Other.Version)
		f.Evidence, f.Reason = [][]byte{fork.Pinned.Bytes(), fork.Other.Bytes()}, ErrFork.Error()
		return f
	}
	var version uint64
	if l != nil {
		version = l.Version
	}
	kind := ListRefused
	if errors.Is(err, ErrWrongAccount) {
		kind = AccountKeyChanged
	}
	f := d.newFinding(kind, version)
	f.Reason = refusalReason(err)
	if len(raw) <= keys.MaxDeviceListSize {
		f.Evidence = [][]byte{raw}
	}
	return f
}

// refusalReason names the sentinel an error matches: the reason a finding
// keeps, never more of the error's text.
func refusalReason(err error) string {
	for _, s := range []error{ErrBadSignature, ErrWrongAccount, ErrRollback, ErrBrokenChain, ErrExpired,
		ErrTooLarge, ErrUnsupportedVersion, ErrUnlistedDevice, ErrMalformed} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "refused"
}

// acceptList returns the account to commit when l replaces the list
// pinned in a (nil: none pinned, l is pinned on first use), with what
// changed; a itself is not changed. It returns nil, nil when l is the
// pinned list, and the error of Follows (or ErrRollback below the minimum
// version, ErrWrongAccount for another key) when l may not replace it.
func (d *Device) acceptList(user string, a *account, l *keys.DeviceList) (*account, *DeviceChange, error) {
	if a == nil {
		next := &account{user: user, key: l.Account, list: l}
		return next, &DeviceChange{User: user, Version: l.Version, First: true, Added: slices.Clone(l.Devices)}, nil
	}
	if !l.Account.Equal(a.key) {
		return nil, nil, fmt.Errorf("%w: pinned %v, got %v", ErrWrongAccount, a.key, l.Account)
	}
	if l.Version < a.minVersion {
		return nil, nil, fmt.Errorf("%w: version %d, at least %d expected", ErrRollback, l.Version, a.minVersion)
	}
	if a.list != nil {
		if err := l.Follows(a.list); err != nil {
			return nil, nil, err
		}
		if l.Version == a.list.Version {
			return nil, nil, nil
		}
	}
	next := a.clone()
	next.list = l
	change := &DeviceChange{User: user, Version: l.Version, First: a.list == nil}
	if a.list == nil {
		change.Added = slices.Clone(l.Devices)
		return next, change, nil
	}
	for _, dev := range l.Devices {
		if old, ok := a.list.Device(dev.ID); !ok || !old.Identity.Equal(dev.Identity) {
			change.Added = append(change.Added, dev)
		}
	}
	for _, dev := range a.list.Devices {
		if now, ok := l.Device(dev.ID); !ok || !now.Identity.Equal(dev.Identity) {
			change.Removed = append(change.Removed, dev)
		}
	}
	d.recordChange(next, change)
	return next, change, nil
}

// recordChange adds the findings of a change to next.
func (d *Device) recordChange(next *account, change *DeviceChange) {
	for _, c := range []struct {
		kind AccountFindingKind
		devs []keys.ListedDevice
	}{{DeviceAdded, change.Added}, {DeviceRemoved, change.Removed}} {
		if len(c.devs) == 0 {
			continue
		}
		f := d.newFinding(c.kind, change.Version)
		for _, dev := range c.devs {
			f.Devices, f.Names = append(f.Devices, dev.ID), append(f.Names, dev.Name)
		}
		next.addFinding(f)
	}
}

// commitAccount writes next in one Apply and adopts it.
func (d *Device) commitAccount(ctx context.Context, next *account) error {
	b := d.newBatch()
	err := putAccount(b, next)
	if err == nil {
		err = d.store.Apply(ctx, b)
	}
	d.recycle(b)
	if err != nil {
		return err
	}
	d.accounts[next.user] = next
	return nil
}

// UpdateDeviceList verifies raw, the device list of user's account as the
// relay served it, and pins it if it is newer than the one pinned (or
// none is, on first use). It returns what changed (nil when raw is the
// pinned list). A list that may not replace the pinned one is refused with
// its typed error, ErrBadSignature, ErrExpired, ErrWrongAccount (another
// account key: TrustAccount accepts it), ErrRollback, ErrBrokenChain or
// a *keys.ForkError (ErrFork), and kept as an AccountFinding; the pinned
// list stays. For our own account it needs one (ErrNoAccount). If the
// store fails, nothing changed.
func (d *Device) UpdateDeviceList(ctx context.Context, user string, raw []byte) (*DeviceChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validAddress(Address{User: user}); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := d.accountOf(ctx, user)
	if err != nil {
		return nil, err
	}
	if a == nil && user == d.self.User {
		return nil, fmt.Errorf("%w: this device has no account (NewAccount, or link it)", ErrNoAccount)
	}
	l, perr := keys.ParseDeviceList(raw, keys.WithClock(d.opts.now))
	var next *account
	var change *DeviceChange
	if perr == nil {
		next, change, perr = d.acceptList(user, a, l)
	}
	if perr != nil {
		if a != nil {
			noted := a.clone()
			noted.addFinding(d.refusal(perr, raw, l))
			if err := d.commitAccount(ctx, noted); err != nil {
				return nil, err
			}
		}
		return nil, perr
	}
	if next == nil {
		return nil, nil
	}
	if err := d.commitAccount(ctx, next); err != nil {
		return nil, err
	}
	return change, nil
}

// TrustAccount pins raw, a device list of user's account signed by an
// account key other than the pinned one, replacing the pinned account:
// the app accepts the new key after the user compared safety numbers, as
// Trust does for an identity. A lost account key (every device that held
// it gone) comes back as such a new key. The decision follows to our own
// other devices: it returns a trust sync for each that has a usable
// session (the others decide for themselves), committed in the same
// Apply. It returns the list's parse errors, and the store's error with
// nothing changed.
func (d *Device) TrustAccount(ctx context.Context, user string, raw []byte) (*DeviceChange, []*Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := validAddress(Address{User: user}); err != nil {
		return nil, nil, err
	}
	l, err := keys.ParseDeviceList(raw, keys.WithClock(d.opts.now))
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if user == d.self.User {
		return nil, nil, fmt.Errorf("%w: our own account changes by linking, not TrustAccount", ErrMalformed)
	}
	a, err := d.accountOf(ctx, user)
	if err != nil {
		return nil, nil, err
	}
	next, change := d.trusted(user, a, l)
	if next == nil {
		return nil, nil, nil
	}
	var parts []fanPart
	if own := d.own(); own != nil && own.list != nil {
		targets, _ := d.listTargets(nil, nil, d.self.User, own.list, true, d.self) // the others decide for themselves
		for _, t := range targets {
			id := newMessageID()
			parts = append(parts, fanPart{p: t.p, s: t.s, c: &sealedpb.Content{Version: contentVersion,
				Id: id[:], Kind: uint32(KindAccount), SyncFor: user, TrustedList: l.Bytes()}})
		}
	}
	if len(parts) == 0 {
		if err := d.commitAccount(ctx, next); err != nil {
			return nil, nil, err
		}
		return change, nil, nil
	}
	outs, err := d.sealMany(ctx, d.own(), parts, func(b *Batch) error { return putAccount(b, next) }, nil)
	if err != nil {
		return nil, nil, err
	}
	d.accounts[user] = next
	return change, outs, nil
}

// DeviceList returns the pinned device list of user's account (ours for
// our own user), or ErrNotFound when none is.
func (d *Device) DeviceList(ctx context.Context, user string) (*keys.DeviceList, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := d.accountOf(ctx, user)
	if err != nil {
		return nil, err
	}
	if a == nil || a.list == nil {
		return nil, fmt.Errorf("%w: no device list pinned for %q", ErrNotFound, user)
	}
	return a.list, nil
}

// AccountFindings returns what was noticed about user's account, oldest
// first: devices added and removed, refused lists and forks.
func (d *Device) AccountFindings(ctx context.Context, user string) ([]AccountFinding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := d.accountOf(ctx, user)
	if err != nil || a == nil {
		return nil, err
	}
	out := make([]AccountFinding, 0, len(a.findings))
	for _, f := range a.findings {
		af := AccountFinding{User: user, Kind: findingKind(f.Kind), Version: f.Version,
			At: time.Unix(0, f.AtUnixNano), Reason: f.Reason, Evidence: f.Evidence}
		for i, id := range f.Devices {
			dev := keys.ListedDevice{ID: id}
			if i < len(f.Names) {
				dev.Name = f.Names[i]
			}
			if l, ok := listedIn(a.list, id); ok && l.Name == dev.Name {
				dev.Identity = l.Identity
			}
			af.Devices = append(af.Devices, dev)
		}
		out = append(out, af)
	}
	return out, nil
}

func listedIn(l *keys.DeviceList, id uint32) (keys.ListedDevice, bool) {
	if l == nil {
		return keys.ListedDevice{}, false
	}
	return l.Device(id)
}

// NewAccount makes this device the first device of a new account: a new
// account key, held by this device, and the account's first device list,
// naming this device as name. It returns the list, to publish on the
// relay (the relay stores it as an opaque blob). It returns ErrMalformed
// for a bad name or when the device already has an account.
func (d *Device) NewAccount(ctx context.Context, name string) (*keys.DeviceList, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.own() != nil {
		return nil, fmt.Errorf("%w: this device already has an account", ErrMalformed)
	}
	k := keys.GenerateAccountKey()
	now := d.opts.now()
	l, err := keys.NewDeviceList(k, nil, now, now.Add(d.opts.listLifetime),
		[]keys.ListedDevice{{ID: d.self.Device, Identity: d.id.Public(), Name: name}})
	if err != nil {
		return nil, err
	}
	a := &account{user: d.self.User, key: k.Public(), list: l}
	if err := d.commitOwn(ctx, a, k.Bytes(), nil); err != nil {
		return nil, err
	}
	return l, nil
}

// commitOwn writes our new own account, and the device record with the
// account seed (nil: unchanged) and the link secret (nil: unchanged), in
// one Apply, plus extra's operations.
func (d *Device) commitOwn(ctx context.Context, a *account, seed []byte, extra *Batch) error {
	b := extra
	if b == nil {
		b = d.newBatch()
	}
	err := putAccount(b, a)
	oldSeed := d.rec.AccountSeed
	if err == nil && seed != nil {
		d.rec.AccountSeed = seed
		err = d.putDevice(b, d.pre)
	}
	if err == nil {
		err = d.store.Apply(ctx, b)
	}
	d.recycle(b)
	if err != nil {
		d.rec.AccountSeed = oldSeed
		return err
	}
	d.accounts[d.self.User] = a
	return nil
}

// accountKeyHeld returns the account key, or ErrNoAccount when this
// device does not hold it.
func (d *Device) accountKeyHeld() (*keys.AccountKey, error) {
	if d.own() == nil || len(d.rec.AccountSeed) == 0 {
		return nil, fmt.Errorf("%w: this device does not hold the account key", ErrNoAccount)
	}
	return keys.NewAccountKey(d.rec.AccountSeed)
}

// HoldsAccountKey reports whether this device holds its account's key,
// which linking and removing devices need.
func (d *Device) HoldsAccountKey() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.own() != nil && len(d.rec.AccountSeed) > 0
}

// RenewDeviceList signs the account's list again with the same devices and
// a new expiry (a device list expires: DefaultDeviceListLifetime), for
// the app to publish; peers take it from the next content too. It needs
// the account key (ErrNoAccount).
func (d *Device) RenewDeviceList(ctx context.Context) (*keys.DeviceList, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.signOwnList(ctx, d.own().listDevices(), nil)
}

// listDevices returns the devices of the pinned list.
func (a *account) listDevices() []keys.ListedDevice {
	if a == nil || a.list == nil {
		return nil
	}
	return slices.Clone(a.list.Devices)
}

// signOwnList signs our account's next list with devices and commits it
// (with extra's operations in the same Apply).
func (d *Device) signOwnList(ctx context.Context, devices []keys.ListedDevice, extra *Batch) (*keys.DeviceList, error) {
	k, err := d.accountKeyHeld()
	if err != nil {
		return nil, err
	}
	now := d.opts.now()
	own := d.own()
	l, err := keys.NewDeviceList(k, own.list, now, now.Add(d.opts.listLifetime), devices)
	if err != nil {
		return nil, err
	}
	next := own.clone()
	next.list = l
	if err := d.commitOwn(ctx, next, nil, extra); err != nil {
		return nil, err
	}
	return l, nil
}

// checkAccount applies what a received content says about accounts
// (docs/SPEC.md §22.4) to rc: the device list it carries, whether the
// sender's account vouches for it, its sync fields and the versions it
// reports. It returns ErrUnlistedDevice for a sender the pinned list does
// not name, ErrMalformed for a sync copy from another account, and the
// errors of a provisioning (link.go).
func (d *Device) checkAccount(ctx context.Context, rc *received, c *content) error {
	user, fromOwn := rc.p.addr.User, rc.p.addr.User == d.self.User
	a := rc.acct
	switch {
	case len(c.pb.Provision) > 0:
		next, err := d.acceptProvision(rc, c)
		if err != nil {
			return err
		}
		a = next
	case len(c.pb.DeviceList) > 0 && (a == nil || a.list == nil || !a.list.Matches(c.pb.DeviceList)):
		// (The pinned list carried again is not verified again: a list
		// is verified once per version.)
		raw := c.pb.DeviceList
		l, err := keys.ParseDeviceList(raw, keys.WithClock(d.opts.now))
		var next *account
		if err == nil {
			switch {
			case a == nil && fromOwn:
				// Our own account is never pinned from a content.
			case a == nil && rc.p.pending():
				// Nor from a stranger we have not answered: anyone can
				// make pending peers, which are evicted; a pin would
				// outlive them. Its next content after our answer pins.
			case a == nil && !listsDevice(l, rc.p.addr, rc.p.identity):
				// A list that does not name its sender is not pinned.
			default:
				next, rc.change, err = d.acceptList(user, a, l)
			}
		}
		if errors.Is(err, ErrRollback) {
			// An older list in-band is a device of the account that has
			// not heard of the newest yet, not an attack: our next content
			// tells it (peer_list), and nothing is noted.
			err = nil
		}
		if err != nil && a != nil {
			next = a.clone()
			next.addFinding(d.refusal(err, raw, l))
		}
		if next != nil {
			rc.accounts, a = append(rc.accounts, next), next
		}
	}
	if err := a.vouch(rc.p.addr, rc.p.identity); err != nil {
		return err
	}
	if a == nil && fromOwn && len(d.rec.LinkSecret) > 0 {
		// While this device waits to be linked, only the provisioning is
		// accepted from our own user: anything else could come from a
		// device the relay runs.
		return fmt.Errorf("%w: %s before this device was linked", ErrUnlistedDevice, rc.p.addr)
	}
	if c.pb.SyncFor != "" && (!fromOwn || d.own() == nil && rc.provisioned == nil) {
		return fmt.Errorf("%w: a sync copy from another account", ErrMalformed)
	}
	if c.pb.OwnList > a.version() {
		rc.refresh = append(rc.refresh, user)
	}
	own := d.own()
	if fromOwn {
		own = a
	}
	if c.pb.PeerList > own.version() && !fromOwn {
		rc.refresh = append(rc.refresh, d.self.User)
	}
	rc.p.rec.ListKnown = c.pb.PeerList
	if len(c.pb.TrustedList) > 0 {
		return d.trustSynced(ctx, rc, c)
	}
	return nil
}

// trustSynced stages what a trust sync from our own other device says
// (docs/SPEC.md §22.5): it accepted this list of SyncFor's account, so we
// pin it too, the account key included. A list that does not verify is
// ErrMalformed's or its own error; our own account is not TrustAccount's.
func (d *Device) trustSynced(ctx context.Context, rc *received, c *content) error {
	user := c.pb.SyncFor
	if user == d.self.User || validAddress(Address{User: user}) != nil {
		return fmt.Errorf("%w: a trust sync about %q", ErrMalformed, user)
	}
	l, err := keys.ParseDeviceList(c.pb.TrustedList, keys.WithClock(d.opts.now))
	if err != nil {
		return err
	}
	a, err := d.accountOf(ctx, user)
	if err != nil {
		return err
	}
	next, change := d.trusted(user, a, l)
	if next != nil {
		rc.accounts = append(rc.accounts, next)
		rc.change = change
	}
	return nil
}

// trusted returns the account to commit when the app (or our other device)
// accepts l for user, whose pinned account is a: a new pin when the key
// differs, the list if it is newer otherwise (nil when it changes
// nothing).
func (d *Device) trusted(user string, a *account, l *keys.DeviceList) (*account, *DeviceChange) {
	if a != nil && a.key.Equal(l.Account) {
		next, change, err := d.acceptList(user, a, l)
		if err != nil {
			return nil, nil
		}
		return next, change
	}
	next := &account{user: user, key: l.Account, list: l}
	if a != nil {
		next.findings = slices.Clone(a.findings)
		next.addFinding(d.newFinding(AccountKeyTrusted, l.Version))
	}
	return next, &DeviceChange{User: user, Version: l.Version, First: true, Added: slices.Clone(l.Devices)}
}

// listsDevice reports whether l names the device at addr with id.
func listsDevice(l *keys.DeviceList, addr Address, id keys.PublicIdentity) bool {
	dev, ok := l.Device(addr.Device)
	return ok && dev.Identity.Equal(id)
}

// stageAccounts adds the accounts a received content changes, and the
// device record a provisioning changes, to its batch.
func (d *Device) stageAccounts(rc *received) error {
	for _, a := range rc.accounts {
		if err := putAccount(rc.batch, a); err != nil {
			return err
		}
	}
	if rc.provisioned == nil {
		return nil
	}
	if len(rc.pins) > 0 && rc.tx == nil {
		rc.tx = &txn{}
	}
	for _, q := range rc.pins {
		var st staged
		if err := d.stage(rc.batch, q, nil, &st); err != nil {
			return err
		}
		rc.tx.also, rc.tx.adds = append(rc.tx.also, st), append(rc.tx.adds, q)
	}
	link, seed := d.rec.LinkSecret, d.rec.AccountSeed
	d.rec.LinkSecret, d.rec.AccountSeed = nil, rc.seed
	pre := rc.pre
	if pre == nil {
		pre = d.pre
	}
	err := d.putDevice(rc.batch, pre)
	d.rec.LinkSecret, d.rec.AccountSeed = link, seed
	return err
}

// adoptAccounts makes the accounts a received content changed the pinned
// ones, once its commit succeeded (ok).
func (d *Device) adoptAccounts(rc *received, ok bool) {
	if !ok {
		return
	}
	for _, a := range rc.accounts {
		d.accounts[a.user] = a
	}
	if rc.provisioned != nil {
		clear(d.rec.LinkSecret)
		d.rec.LinkSecret, d.rec.AccountSeed = nil, rc.seed
	}
}
