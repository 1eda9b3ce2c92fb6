package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/keys"
)

// Accounts: one user, several devices (docs/SPEC.md §22).
//
// Device 1 of a user makes the account on its first start (NewAccount)
// and publishes its signed device list on the relay. Any other device
// (-device N with N ≠ 1, or -link) makes none: it publishes its bundle,
// /link shows a link code, and a device holding the account key approves
// it (/approve CODE, then /approve yes once both screens show the same
// short form). The approval signs the next list, which the approver
// publishes, and sends a notice carrying it to every contact before the
// provisioning goes to the new device.
//
// A message to a user whose account the relay has a list for goes to
// every device on the list and, as a sync copy, to our own other devices
// (SendUser, posted as one batch); to a user without an account, to the
// one device of the contact (Send), as before.

// linkCodeText is how the chat prints a link code (a QR code in a
// graphical app).
func linkCodeText(c *keys.LinkCode) string { return base64.RawURLEncoding.EncodeToString(c.Bytes()) }

// setupAccount runs at start: device 1 of a user without an account makes
// one (unless it is to be linked); a device holding the account key
// publishes its list again, in case the last try did not reach the relay.
func (a *app) setupAccount(ctx context.Context) error {
	if _, err := a.dev.DeviceList(ctx, a.self.User); errors.Is(err, sealpost.ErrNotFound) {
		if a.link {
			a.out.printf("this device has no account yet: type /link to show a link code, then approve it on a device of yours")
			return nil
		}
		l, err := a.dev.NewAccount(ctx, a.deviceName)
		if err != nil {
			return fmt.Errorf("making the account: %w", err)
		}
		a.out.printf("made an account for %s: this device is %d %q on its device list", a.self.User, a.self.Device, a.deviceName)
		a.publishList(ctx, l)
		return nil
	} else if err != nil {
		return err
	}
	// A change made while this device was off (a device linked or
	// removed) comes with the next content from our devices, or now.
	a.fetchList(ctx, a.self.User)
	if a.dev.HoldsAccountKey() {
		l, err := a.dev.DeviceList(ctx, a.self.User)
		if err == nil {
			a.publishList(ctx, l)
		}
	}
	return nil
}

// publishList puts our account's list on the relay. A 409 means the relay
// holds this version (or a newer one) already.
func (a *app) publishList(ctx context.Context, l *keys.DeviceList) {
	err := a.relay.PutDeviceList(ctx, a.self.User, l.Bytes())
	if err != nil && !client.IsStatus(err, http.StatusConflict) {
		a.out.printf("! publishing the device list (version %d): %v; it goes again at the next start", l.Version, err)
	}
}

// fetchList fetches user's device list from the relay and pins it if it
// is newer than the pinned one (the Device verifies it). It reports
// whether a list is pinned for user afterwards. A user without an account
// (404) or an unreachable relay leave it as it was.
func (a *app) fetchList(ctx context.Context, user string) bool {
	raw, err := a.relay.FetchDeviceList(ctx, user)
	var se *client.StatusError
	switch {
	case err == nil:
		change, err := a.dev.UpdateDeviceList(ctx, user, raw)
		switch {
		case err != nil:
			a.out.printf("! %s's device list from the relay is refused: %v", user, err)
		case change != nil:
			a.showChange(change)
		}
	case errors.As(err, &se) && se.Code != http.StatusNotFound:
		a.out.printf("! fetching %s's device list: %v", user, err)
	}
	// A 404 is a user without an account; a relay out of reach says so in
	// the receive loop, and the message goes as to a user without one.
	_, err = a.dev.DeviceList(ctx, user)
	return err == nil
}

// hasList reports whether messages to user go to an account (SendUser):
// a list is pinned for it, or the relay has one.
func (a *app) hasList(ctx context.Context, user string) bool {
	if l, err := a.dev.DeviceList(ctx, user); err == nil && a.now().Before(l.Expires) {
		return true
	}
	if user == a.self.User {
		return false
	}
	return a.fetchList(ctx, user)
}

// startSession fetches the bundle of addr and starts a session with it.
func (a *app) startSession(ctx context.Context, addr sealpost.Address) error {
	blob, _, err := a.relay.FetchBundle(ctx, addr.User, addr.Device)
	if err != nil {
		return fmt.Errorf("fetching %s's bundle: %w", addr, err)
	}
	b, err := keys.ParseBundle(blob)
	if err == nil {
		err = a.dev.StartSession(ctx, addr, b)
	}
	if err != nil {
		return fmt.Errorf("%s's bundle: %w", addr, err)
	}
	return nil
}

// connect starts a session with every device a message to user needs.
func (a *app) connect(ctx context.Context, user string, need []sealpost.Address) error {
	for _, addr := range need {
		if err := a.startSession(ctx, addr); err != nil {
			return err
		}
	}
	return nil
}

// seal seals a message to user, with SendUser when user has an account
// and with Send to the contact otherwise, records it in the history as
// queued and wakes the outbox loop. It returns the message as stored, or
// nil after printing why not.
func (a *app) seal(ctx context.Context, user, body string, files []*attach.Pointer) *message {
	if user == a.self.User {
		a.out.printf("! a message to yourself: your other devices get a copy of every message you send")
		return nil
	}
	if !a.hasList(ctx, user) {
		peer, ok := a.hist.contact(user)
		if !ok {
			a.out.printf("! unknown contact %q: /add it first", user)
			return nil
		}
		a.sealing.Lock()
		defer a.sealing.Unlock()
		o, err := a.dev.Send(ctx, peer, []byte(body), files...)
		if errors.Is(err, sealpost.ErrNoSession) {
			a.out.printf("! no usable session with %s: /add %s again", user, user)
			return nil
		}
		if err != nil {
			a.out.printf("! send: %v", err)
			return nil
		}
		return a.queued(o.ID, user, o.To.Device, body, files)
	}
	if _, ok := a.hist.contact(user); !ok {
		if l, err := a.dev.DeviceList(ctx, user); err == nil && len(l.Devices) > 0 {
			if err := a.hist.addContact(sealpost.Address{User: user, Device: l.Devices[0].ID}); err != nil {
				a.out.printf("! %v", err)
			}
		}
	}
	var outs []*sealpost.Outgoing
	var err error
	for range 3 {
		var need []sealpost.Address
		need, err = a.dev.NeedSessions(ctx, user)
		if errors.Is(err, sealpost.ErrExpired) {
			a.fetchList(ctx, user)
			a.fetchList(ctx, a.self.User)
			continue
		}
		if err == nil {
			err = a.connect(ctx, user, need)
		}
		if err != nil {
			break
		}
		a.sealing.Lock()
		outs, err = a.dev.SendUser(ctx, user, []byte(body), files...)
		if err == nil {
			m := a.queued(outs[0].ID, user, 0, body, files)
			a.sealing.Unlock()
			return m
		}
		a.sealing.Unlock()
		var missing *sealpost.MissingSessionsError
		if !errors.As(err, &missing) {
			break
		}
	}
	if l, lerr := a.dev.DeviceList(ctx, a.self.User); errors.Is(err, sealpost.ErrUnlistedDevice) && lerr == nil {
		if _, listed := l.Device(a.self.Device); !listed {
			a.out.printf("! this device was removed from your account: it cannot send for it (/devices)")
			return nil
		}
	}
	a.out.printf("! send to %s: %v", user, err)
	return nil
}

// queued records a sealed message in the history and wakes the outbox
// loop; the caller holds sealing.
func (a *app) queued(id sealpost.MessageID, user string, device uint32, body string, files []*attach.Pointer) *message {
	m, err := a.hist.queueMessage(id, user, device, body, files, time.Now())
	if err != nil {
		a.out.printf("! saving the message: %v", err)
		return nil
	}
	a.wake()
	return m
}

// ownDeviceName returns the name our own list gives device id.
func (a *app) ownDeviceName(ctx context.Context, id uint32) string {
	if l, err := a.dev.DeviceList(ctx, a.self.User); err == nil {
		if d, ok := l.Device(id); ok {
			return d.Name
		}
	}
	return "device " + strconv.FormatUint(uint64(id), 10)
}

// showChange prints what a newer device list changed.
func (a *app) showChange(c *sealpost.DeviceChange) {
	whose := c.User + "'s account"
	if c.User == a.self.User {
		whose = "your account"
	}
	if c.First {
		a.out.printf("%s: device list version %d, devices %s", whose, c.Version, listedNames(c.Added))
		return
	}
	if len(c.Added) > 0 {
		a.out.printf("%s: device added: %s (list version %d)", whose, listedNames(c.Added), c.Version)
	}
	if len(c.Removed) > 0 {
		a.out.printf("%s: device removed: %s (list version %d)", whose, listedNames(c.Removed), c.Version)
	}
	if a.removedHere(c) {
		a.out.printf("! this device was removed from your account: it can no longer send or receive for it")
	}
}

func listedNames(devs []keys.ListedDevice) string {
	s := make([]string, len(devs))
	for i, d := range devs {
		s[i] = fmt.Sprintf("%d %q", d.ID, d.Name)
	}
	return strings.Join(s, ", ")
}

// removedHere reports whether c removed this device from our account.
func (a *app) removedHere(c *sealpost.DeviceChange) bool {
	return c.User == a.self.User && slices.ContainsFunc(c.Removed, func(d keys.ListedDevice) bool { return d.ID == a.self.Device })
}

// showAccount prints what an incoming content says about accounts: a
// provisioning, a changed list, lists to fetch again.
func (a *app) showAccount(ctx context.Context, in *sealpost.Incoming) {
	if p := in.Provisioned; p != nil {
		key := "without the account key (it cannot link or remove devices)"
		if p.AccountKey {
			key = "with the account key (it can link and remove devices)"
		}
		a.out.printf("linked: this device is now %s on %s's account, %s; approved by %s",
			a.self, a.self.User, key, in.From)
	}
	if in.Devices != nil && in.Provisioned == nil {
		a.showChange(in.Devices)
	}
	for _, user := range in.Refresh { // a newer list exists than we hold
		if user != a.self.User || a.hasOwnAccount(ctx) {
			a.fetchList(ctx, user)
		}
	}
}

func (a *app) hasOwnAccount(ctx context.Context) bool {
	_, err := a.dev.DeviceList(ctx, a.self.User)
	return err == nil
}

// linkCommand is /link [name]: show a link code for this device and wait
// for a device of the account to approve it.
func (a *app) linkCommand(ctx context.Context, args []string) {
	if a.hasOwnAccount(ctx) {
		a.out.printf("! this device is on %s's account already (/devices)", a.self.User)
		return
	}
	name := a.deviceName
	if len(args) > 0 {
		name = strings.Join(args, " ")
	}
	code, err := a.dev.LinkCode(ctx, name)
	if err != nil {
		a.out.printf("! /link: %v", err)
		return
	}
	a.out.printf("link code for %s %q: %s", a.self, name, linkCodeText(code))
	a.out.printf("short form: %s", code.Short())
	a.out.printf("on a device of %s's that holds the account key, type /approve <code>, check that it shows %s, then /approve yes; waiting for it",
		a.self.User, code.Short())
}

// approveCommand is /approve [-key] <code>, then /approve yes (or no):
// the first shows the code's short form to compare, the second links it.
// -key gives the new device the account key too.
func (a *app) approveCommand(ctx context.Context, args []string) {
	share := slices.Contains(args, "-key")
	args = slices.DeleteFunc(args, func(s string) bool { return s == "-key" })
	if len(args) != 1 {
		a.out.printf("! usage: /approve [-key] <code>, then /approve yes")
		return
	}
	switch args[0] {
	case "no":
		a.pending = nil
		a.out.printf("not linked")
		return
	case "yes":
		if a.pending == nil {
			a.out.printf("! nothing to approve: /approve <code> first")
			return
		}
		code, share := a.pending, a.pendingShare
		a.pending = nil
		a.approve(ctx, code, share)
		return
	}
	if !a.dev.HoldsAccountKey() {
		a.out.printf("! this device does not hold the account key: approve on one that does (/devices)")
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(args[0], "="))
	var code *keys.LinkCode
	if err == nil {
		code, err = keys.ParseLinkCode(raw)
	}
	if err != nil {
		a.out.printf("! not a link code: %v", err)
		return
	}
	if code.Address.User != a.self.User {
		a.out.printf("! the code is for %s, not a device of %s", code.Address, a.self.User)
		return
	}
	a.pending, a.pendingShare = code, share
	a.out.printf("link %s %q? short form: %s", code.Address, code.Name, code.Short())
	a.out.printf("if the new device shows the same short form, type /approve yes; otherwise /approve no")
}

// approve links the device of code: fetch its bundle, Approve, publish the
// new list, and hand the notices and the provisioning to the outbox, in
// that order.
func (a *app) approve(ctx context.Context, code *keys.LinkCode, share bool) {
	blob, _, err := a.relay.FetchBundle(ctx, code.Address.User, code.Address.Device)
	if err != nil {
		a.out.printf("! fetching %s's bundle: %v (the new device publishes it when it starts)", code.Address, err)
		return
	}
	b, err := keys.ParseBundle(blob)
	if err != nil {
		a.out.printf("! %s's bundle: %v", code.Address, err)
		return
	}
	a.sealing.Lock() // the list is on the relay before the outbox posts the notices
	ap, err := a.dev.Approve(ctx, code, b, sealpost.ApproveOptions{ShareAccountKey: share})
	if err == nil {
		a.publishList(ctx, ap.List)
	}
	a.sealing.Unlock()
	if err != nil {
		a.out.printf("! approving %s: %v", code.Address, err)
		return
	}
	a.wake()
	a.out.printf("approved %s %q: device list version %d; a notice to %d device(s), then the provisioning",
		code.Address, code.Name, ap.List.Version, len(ap.Notices))
}

// removeCommand is /remove <id>.
func (a *app) removeCommand(ctx context.Context, args []string) {
	if len(args) != 1 {
		a.out.printf("! usage: /remove <device id> (see /devices)")
		return
	}
	id, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		a.out.printf("! bad device id %q", args[0])
		return
	}
	name := a.ownDeviceName(ctx, uint32(id))
	a.sealing.Lock()
	ap, err := a.dev.RemoveDevice(ctx, uint32(id))
	if err == nil {
		a.publishList(ctx, ap.List)
	}
	a.sealing.Unlock()
	if err != nil {
		a.out.printf("! /remove: %v", err)
		return
	}
	a.wake()
	a.out.printf("removed device %d %q: device list version %d; a notice to %d device(s)", id, name, ap.List.Version, len(ap.Notices))
}

// devicesCommand is /devices: our account's devices.
func (a *app) devicesCommand(ctx context.Context) {
	l, err := a.dev.DeviceList(ctx, a.self.User)
	if errors.Is(err, sealpost.ErrNotFound) {
		a.out.printf("this device is on no account yet (/link)")
		return
	}
	if err != nil {
		a.out.printf("! %v", err)
		return
	}
	key := "does not hold"
	if a.dev.HoldsAccountKey() {
		key = "holds"
	}
	a.out.printf("%s's devices (list version %d, valid until %s; this device %s the account key):",
		a.self.User, l.Version, l.Expires.UTC().Format(time.DateOnly), key)
	for _, d := range l.Devices {
		this := ""
		if d.ID == a.self.Device {
			this = "  (this device)"
		}
		a.out.printf("  %d  %s%s", d.ID, d.Name, this)
	}
}
