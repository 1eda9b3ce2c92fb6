package sealpost

import (
	"context"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/kdf"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

// Linking and removing devices (docs/SPEC.md §22.6, §22.7).
//
// The new device, opened at an address of the account's user with a
// device id the list does not use, publishes its bundle and shows
// LinkCode as a QR code. A device holding the account key scans it, the
// user checks that both screens show the same Short form, and Approve
// then, in one Apply: signs the next list with the new device, seals a
// notice carrying that list to every peer and own device it has a
// session with, and seals the provisioning to the new device, on a new
// session from the new device's bundle (so only it can read it), with a
// MAC under the code's one-time secret (so only the approver can have
// made it). The notices come first in what it returns; and no peer
// encrypts to the new device before it holds a list naming it, which it
// reports as a DeviceAdded change. So every peer sees the addition before
// the new device can receive anything from it.
//
// What the relay can try, and why it fails: it cannot replace the
// identity in the code (it never carries the code; Approve refuses a
// bundle whose identity is not the code's); it cannot forge or replay the
// provisioning (the MAC needs the secret, which the new device forgets
// once used, and a replayed envelope is a replayed session start); and it
// cannot link a device of its own (that needs the account key's signature
// on a list).

// Provisioned is what the provisioning of a newly linked device brought.
type Provisioned struct {
	// AccountKey: the account key came too, so this device can link and
	// remove devices.
	AccountKey bool
	// Accounts is how many peer accounts were pinned from the approving
	// device (their lists are fetched from the relay or come with their
	// next content, and must be at least the versions it held).
	Accounts int
	// Devices is how many identities of peers without accounts were
	// pinned from it (trust on first use already decided there).
	Devices int
	// History is the archive of recent history the approving app
	// uploaded, if any.
	History *attach.Pointer
}

// maxProvisionedAccounts bounds the peer accounts a provisioning pins.
const maxProvisionedAccounts = 4096

// LinkCode returns a link code for this device to be added to its user's
// account as name: show its Bytes as a QR code, and its Short form. The
// device keeps the code's one-time secret until the provisioning arrives
// (a new code replaces it). Publish the device's bundle first, so the
// approving device can fetch it. It returns ErrMalformed for a bad name or
// a device that already has an account.
func (d *Device) LinkCode(ctx context.Context, name string) (*keys.LinkCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.own() != nil {
		return nil, fmt.Errorf("%w: this device already has an account", ErrMalformed)
	}
	code, err := keys.NewLinkCode(d.self, d.id.Public(), name)
	if err != nil {
		return nil, err
	}
	old := d.rec.LinkSecret
	d.rec.LinkSecret = code.Secret()
	b := d.newBatch()
	err = d.putDevice(b, d.pre)
	if err == nil {
		err = d.store.Apply(ctx, b)
	}
	d.recycle(b)
	if err != nil {
		d.rec.LinkSecret = old
		return nil, err
	}
	clear(old)
	return code, nil
}

// Approval is what Approve and RemoveDevice return: the new signed list,
// to publish on the relay, and the envelopes to post, in order: the
// notices to every peer and own device first, then (Approve) the
// provisioning of the new device.
type Approval struct {
	List      *keys.DeviceList
	Notices   []*Outgoing
	Provision *Outgoing
}

// ApproveOptions says what the provisioning of a new device carries
// besides the account's list and pinned peer accounts.
type ApproveOptions struct {
	// ShareAccountKey lets the new device hold the account key, so that it
	// can link and remove devices too.
	ShareAccountKey bool
	// History is an archive of recent history the app encrypted and
	// uploaded (attach.Upload), handed to the new device.
	History *attach.Pointer
}

// Approve adds the device of code, whose bundle (fetched from the relay)
// is b, to this device's account, after the user compared code.Short on
// both screens. It needs the account key (ErrNoAccount). It returns
// ErrIdentityChanged when b's identity or address is not the code's (the
// relay replaced it), ErrMalformed for a code of another user or a device
// id the list gives another identity, and StartSession's errors for a bad
// bundle. Approving a device the list already names with that identity
// (after a crash, say) signs no new list and only provisions it again.
func (d *Device) Approve(ctx context.Context, code *keys.LinkCode, b *keys.Bundle, o ApproveOptions) (*Approval, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case code == nil || b == nil:
		return nil, fmt.Errorf("%w: no link code or bundle", ErrMalformed)
	case b.Address != code.Address || !b.Identity.Equal(code.Identity):
		return nil, fmt.Errorf("%w: the bundle is not the link code's device", ErrIdentityChanged)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k, err := d.accountKeyHeld()
	if err != nil {
		return nil, err
	}
	own := d.own()
	if code.Address.User != d.self.User || code.Address == d.self {
		return nil, fmt.Errorf("%w: a link code for %s", ErrMalformed, code.Address)
	}
	next := own
	if dev, ok := own.list.Device(code.Address.Device); ok && !dev.Identity.Equal(code.Identity) {
		return nil, fmt.Errorf("%w: device %d is listed with another identity; remove it first", ErrMalformed, dev.ID)
	} else if !ok {
		now := d.opts.now()
		devices := append(own.listDevices(), keys.ListedDevice{ID: code.Address.Device, Identity: code.Identity, Name: code.Name})
		l, err := keys.NewDeviceList(k, own.list, now, now.Add(d.opts.listLifetime), devices)
		if err != nil {
			return nil, err
		}
		next = own.clone()
		next.list = l
	}
	// The new device's session, from its bundle.
	p, isNew, err := d.peerToStart(code.Address, b.Identity)
	if err != nil {
		return nil, err
	}
	s, err := d.initiate(p, b)
	if err != nil {
		d.restore(p, nil)
		return nil, err
	}
	provision, err := d.provisioning(ctx, k, o)
	if err != nil {
		d.restore(p, nil)
		return nil, err
	}
	listRaw := next.list.Bytes()
	mac := kdf.MAC(code.Secret(), kdf.LabelLinkProvision, d.id.Public().Bytes(), code.Identity.Bytes(), listRaw, provision)
	id := newMessageID()
	last := fanPart{p: p, s: s, isNew: isNew, c: &sealedpb.Content{Version: contentVersion, Id: id[:],
		Kind: uint32(KindAccount), Provision: provision, ProvisionMac: mac[:]}}
	parts, err := d.noticeParts(ctx, next, p)
	if err != nil {
		d.restore(p, nil)
		return nil, err
	}
	parts = append(parts, last)
	outs, err := d.sealMany(ctx, next, parts, func(b *Batch) error { return putAccount(b, next) }, nil)
	if err != nil {
		return nil, err
	}
	d.accounts[d.self.User] = next
	return &Approval{List: next.list, Notices: outs[:len(outs)-1], Provision: outs[len(outs)-1]}, nil
}

// provisioning returns the encoded Provision for a new device.
func (d *Device) provisioning(ctx context.Context, k *keys.AccountKey, o ApproveOptions) ([]byte, error) {
	pv := &sealedpb.Provision{Version: 1}
	if o.ShareAccountKey {
		pv.AccountSeed = k.Bytes()
	}
	if o.History != nil {
		raw, err := o.History.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: history: %w", ErrMalformed, err)
		}
		pv.History = raw
	}
	var users []string
	for _, p := range d.dir {
		if p.addr.User != d.self.User && !slices.Contains(users, p.addr.User) {
			users = append(users, p.addr.User)
		}
	}
	slices.Sort(users)
	for _, u := range users {
		a, err := d.accountOf(ctx, u)
		if err != nil {
			return nil, err
		}
		if len(pv.Accounts)+len(pv.Devices) == maxProvisionedAccounts {
			break
		}
		if a != nil {
			pv.Accounts = append(pv.Accounts, &sealedpb.PinnedAccount{User: u, AccountKey: a.key.Bytes(), Version: a.version()})
			continue
		}
		// A peer without an account: the identities pinned at its
		// addresses are the trust decisions the new device inherits.
		for _, p := range d.dir {
			if p.addr.User == u && d.peers[p.addr] == p && !p.pending() && len(pv.Accounts)+len(pv.Devices) < maxProvisionedAccounts {
				pv.Devices = append(pv.Devices, &sealedpb.PinnedDevice{User: u, Device: p.addr.Device, Identity: p.identity.Bytes()})
			}
		}
	}
	raw, err := pbstrict.Marshal(pv)
	clear(pv.AccountSeed)
	return raw, err
}

// noticeParts returns a notice (an account content carrying own's list)
// for every pinned peer and own device that has a usable session, except
// skip and devices own does not list.
func (d *Device) noticeParts(ctx context.Context, own *account, skip *peer) ([]fanPart, error) {
	var parts []fanPart
	for _, p := range d.dir {
		if p == skip || p.unconfirmed() || d.peers[p.addr] != p {
			continue
		}
		s := d.usable(p, p.identity)
		if s == nil {
			continue
		}
		a := own
		if p.addr.User != d.self.User {
			var err error
			if a, err = d.accountOf(ctx, p.addr.User); err != nil {
				return nil, err
			}
		}
		if a.vouch(p.addr, p.identity) != nil {
			continue
		}
		id := newMessageID()
		parts = append(parts, fanPart{p: p, s: s, c: &sealedpb.Content{Version: contentVersion, Id: id[:], Kind: uint32(KindAccount)}})
	}
	return parts, nil
}

// RemoveDevice removes device id from this device's account: it signs the
// next list without it and seals a notice carrying that list to every peer
// and own device it has a session with (not the removed one), in one
// Apply. From then on no device that holds the new list encrypts to the
// removed device or accepts anything from it. It needs the account key
// (ErrNoAccount); it returns ErrNotFound for a device the list does not
// name and ErrMalformed for this device itself (remove it from another).
func (d *Device) RemoveDevice(ctx context.Context, id uint32) (*Approval, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k, err := d.accountKeyHeld()
	if err != nil {
		return nil, err
	}
	if id == d.self.Device {
		return nil, fmt.Errorf("%w: a device does not remove itself; remove it from another device", ErrMalformed)
	}
	own := d.own()
	if _, ok := own.list.Device(id); !ok {
		return nil, fmt.Errorf("%w: device %d is not in the list", ErrNotFound, id)
	}
	devices := slices.DeleteFunc(own.listDevices(), func(dev keys.ListedDevice) bool { return dev.ID == id })
	now := d.opts.now()
	l, err := keys.NewDeviceList(k, own.list, now, now.Add(d.opts.listLifetime), devices)
	if err != nil {
		return nil, err
	}
	next := own.clone()
	next.list = l
	d.recordChange(next, &DeviceChange{User: d.self.User, Version: l.Version, Removed: []keys.ListedDevice{mustDevice(own.list, id)}})
	parts, err := d.noticeParts(ctx, next, nil)
	if err != nil {
		return nil, err
	}
	outs, err := d.sealMany(ctx, next, parts, func(b *Batch) error { return putAccount(b, next) }, nil)
	if err != nil {
		return nil, err
	}
	d.accounts[d.self.User] = next
	return &Approval{List: l, Notices: outs}, nil
}

func mustDevice(l *keys.DeviceList, id uint32) keys.ListedDevice {
	dev, _ := l.Device(id)
	return dev
}

// acceptProvision checks a provisioning content (docs/SPEC.md §22.6) and
// stages what it brings in rc: our account, pinned from its list, the
// peer accounts it names, the account key. It returns the account. The
// errors: ErrMalformed from another user or for a bad Provision,
// ErrDuplicate once this device is linked, ErrBadSignature without a link
// pending or for a MAC that does not verify, ErrUnlistedDevice for a list
// that names neither this device nor the sender, and the list's errors.
func (d *Device) acceptProvision(rc *received, c *content) (*account, error) {
	switch {
	case rc.p.addr.User != d.self.User:
		return nil, fmt.Errorf("%w: provisioning from another user", ErrMalformed)
	case d.own() != nil:
		return nil, fmt.Errorf("%w: this device is linked already", ErrDuplicate)
	case len(d.rec.LinkSecret) != keys.LinkSecretSize:
		return nil, fmt.Errorf("%w: no link pending", ErrBadSignature)
	}
	mac := kdf.MAC(d.rec.LinkSecret, kdf.LabelLinkProvision, rc.p.identity.Bytes(), d.id.Public().Bytes(), c.pb.DeviceList, c.pb.Provision)
	if !ct.Equal(mac[:], c.pb.ProvisionMac) {
		return nil, fmt.Errorf("%w: provisioning MAC", ErrBadSignature)
	}
	l, err := keys.ParseDeviceList(c.pb.DeviceList, keys.WithClock(d.opts.now))
	if err != nil {
		return nil, err
	}
	if !listsDevice(l, d.self, d.id.Public()) || !listsDevice(l, rc.p.addr, rc.p.identity) {
		return nil, fmt.Errorf("%w: the provisioned list names neither this device nor its sender", ErrUnlistedDevice)
	}
	pv, err := decodeProvision(c.pb.Provision, d.self.User)
	if err != nil {
		return nil, err
	}
	out := &Provisioned{History: pv.history}
	if pv.seed != nil {
		if !pv.seed.Public().Equal(l.Account) {
			return nil, fmt.Errorf("%w: the provisioned account key is not the list's", ErrMalformed)
		}
		rc.seed, out.AccountKey = pv.seed.Bytes(), true
	}
	own := &account{user: d.self.User, key: l.Account, list: l}
	rc.accounts = append(rc.accounts, own)
	for _, a := range pv.accounts {
		if pinned, loaded := d.accounts[a.user]; loaded && pinned != nil {
			continue // pinned here already
		}
		rc.accounts = append(rc.accounts, a)
		out.Accounts++
	}
	for _, pd := range pv.devices {
		if d.peers[pd.addr] != nil || len(d.others[pd.addr]) > 0 {
			continue // a peer there already
		}
		q, err := d.newPeer(pd.addr, pd.identity, false, false)
		if err != nil {
			return nil, err
		}
		rc.pins = append(rc.pins, q)
		out.Devices++
	}
	rc.provisioned = out
	rc.change = &DeviceChange{User: d.self.User, Version: l.Version, First: true, Added: slices.Clone(l.Devices)}
	return own, nil
}

// provision is a decoded Provision.
type provision struct {
	seed     *keys.AccountKey // nil: not shared
	accounts []*account       // key and minimum version only
	devices  []pinnedDevice
	history  *attach.Pointer
}

// pinnedDevice is an identity pinned for a peer without an account.
type pinnedDevice struct {
	addr     Address
	identity keys.PublicIdentity
}

// decodeProvision decodes a Provision (docs/SPEC.md §22.6) for a device
// of user self. It returns ErrUnsupportedVersion for another version,
// ErrTooLarge for more than maxProvisionedAccounts accounts, and
// ErrMalformed for a bad encoding, account seed, history pointer, user
// name or account key, an account named twice or our own.
func decodeProvision(raw []byte, self string) (*provision, error) {
	pv := new(sealedpb.Provision)
	if err := pbstrict.Unmarshal(raw, pv); err != nil {
		return nil, fmt.Errorf("%w: provisioning", ErrMalformed)
	}
	defer clear(pv.AccountSeed)
	if pv.Version != 1 {
		return nil, fmt.Errorf("%w: provisioning version %d", ErrUnsupportedVersion, pv.Version)
	}
	if len(pv.Accounts)+len(pv.Devices) > maxProvisionedAccounts {
		return nil, fmt.Errorf("%w: provisioning of %d accounts and devices", ErrTooLarge, len(pv.Accounts)+len(pv.Devices))
	}
	out := &provision{}
	if len(pv.AccountSeed) > 0 {
		k, err := keys.NewAccountKey(pv.AccountSeed)
		if err != nil {
			return nil, fmt.Errorf("%w: provisioned account key", ErrMalformed)
		}
		out.seed = k
	}
	if len(pv.History) > 0 {
		var err error
		if out.history, err = attach.ParsePointer(pv.History); err != nil {
			return nil, fmt.Errorf("%w: provisioned history: %w", ErrMalformed, err)
		}
	}
	seen := map[string]bool{self: true}
	for _, pa := range pv.Accounts {
		if seen[pa.User] || validAddress(Address{User: pa.User}) != nil {
			return nil, fmt.Errorf("%w: provisioned account", ErrMalformed)
		}
		seen[pa.User] = true
		key, err := keys.ParsePublicAccountKey(pa.AccountKey)
		if err != nil {
			return nil, fmt.Errorf("%w: provisioned account key", ErrMalformed)
		}
		out.accounts = append(out.accounts, &account{user: pa.User, key: key, minVersion: pa.Version})
	}
	pinnedAt := map[Address]bool{}
	for _, pd := range pv.Devices {
		addr := Address{User: pd.User, Device: pd.Device}
		if pd.User == self || seen[pd.User] || pinnedAt[addr] || validAddress(addr) != nil {
			return nil, fmt.Errorf("%w: provisioned device", ErrMalformed)
		}
		pinnedAt[addr] = true
		id, err := keys.ParsePublicIdentity(pd.Identity)
		if err != nil {
			return nil, fmt.Errorf("%w: provisioned identity", ErrMalformed)
		}
		out.devices = append(out.devices, pinnedDevice{addr: addr, identity: id})
	}
	return out, nil
}
