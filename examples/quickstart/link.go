package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// putList stores user's device list as the relay does: a blob it keeps
// unread but for the account key and the version (examples/relay checks
// the signature with them), and hands to anyone who asks.
func (r *relay) putList(user string, l *keys.DeviceList) {
	raw := l.Bytes()
	_, replaced := r.lists[user]
	r.lists[user] = raw
	fmt.Fprintf(r.out, "      relay: stores %s's device list: a %d-byte blob, version %d", user, len(raw), l.Version)
	if replaced {
		fmt.Fprintln(r.out, ", in place of the older one")
		return
	}
	fmt.Fprintln(r.out, " (it reads the account\n      key and version only; the rest is signed by the account key, not encrypted: anyone may fetch it)")
}

// publishBundle publishes the bundle of the device at addr under its
// address, as publish does for the first devices.
func publishBundle(ctx context.Context, r *relay, dev *sealpost.Device, oneTime int) error {
	b, err := dev.NewBundle(ctx, oneTime)
	if err != nil {
		return err
	}
	var blobs [][]byte
	for _, part := range b.Split() {
		blob, err := part.MarshalBinary()
		if err != nil {
			return err
		}
		blobs = append(blobs, blob)
	}
	r.publish(dev.Address().String(), blobs)
	return nil
}

// receiveQuiet receives everything queued for dev and returns it, each
// result handled (Done).
func receiveQuiet(ctx context.Context, r *relay, name string, dev *sealpost.Device) ([]*sealpost.Incoming, error) {
	var got []*sealpost.Incoming
	for _, env := range r.take(dev.Mailbox()) {
		in, err := dev.Receive(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := dev.Done(ctx, in.ID); err != nil {
			return nil, err
		}
		got = append(got, in)
	}
	return got, nil
}

// postAll posts outs and reports them Sent.
func postAll(ctx context.Context, r *relay, dev *sealpost.Device, outs ...*sealpost.Outgoing) error {
	for _, o := range outs {
		if err := r.post(o); err != nil {
			return err
		}
	}
	return dev.Sent(ctx, outs...)
}

func deviceNames(devs []keys.ListedDevice) string {
	var s []string
	for _, d := range devs {
		s = append(s, fmt.Sprintf("%d %q", d.ID, d.Name))
	}
	return strings.Join(s, ", ")
}

// linkLaptop: Alice makes an account on her phone, links her laptop to it
// through the relay, and Bob sends one message to Alice's account that
// both of her devices print.
func linkLaptop(ctx context.Context, r *relay, c *convo, alice, bob *user, clock func() time.Time) error {
	out := alice.out
	fmt.Fprintln(out, "\n-- Alice links a second device, her laptop (alice.2), to her account")
	list, err := alice.dev.NewAccount(ctx, "phone")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "alice makes an account on her phone: an account key and a device list, signed by it, naming alice.1")
	r.putList("alice", list)

	laptopAddr := sealpost.Address{User: "alice", Device: 2}
	laptop, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), laptopAddr, sealpost.WithClock(clock))
	if err != nil {
		return err
	}
	r.register("alice.2", laptop.Mailbox())
	if err := publishBundle(ctx, r, laptop, 2); err != nil {
		return err
	}
	code, err := laptop.LinkCode(ctx, "laptop")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "laptop publishes its bundle and shows a link code (a QR code in an app; here base64) and its short form:")
	fmt.Fprintf(out, "      %s…  %s\n", base64.RawURLEncoding.EncodeToString(code.Bytes())[:24], code.Short())

	// The phone scans the code; the user compares the short forms.
	scanned, err := keys.ParseLinkCode(code.Bytes())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "alice scans it with her phone, which shows %s too; she approves\n", scanned.Short())
	b, err := keys.ParseBundle(r.fetch(laptopAddr.String()), keys.WithClock(clock))
	if err != nil {
		return err
	}
	ap, err := alice.dev.Approve(ctx, scanned, b, sealpost.ApproveOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "alice's phone signs version %d of the list, naming the laptop, and posts it in a notice to each\n", ap.List.Version)
	fmt.Fprintf(out, "      contact (%d: Bob) first, then the provisioning, sealed to the laptop's bundle\n", len(ap.Notices))
	r.putList("alice", ap.List)
	if err := postAll(ctx, r, alice.dev, ap.Notices...); err != nil {
		return err
	}
	if err := postAll(ctx, r, alice.dev, ap.Provision); err != nil {
		return err
	}
	got, err := receiveQuiet(ctx, r, "laptop", laptop)
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0].Kind != sealpost.KindAccount || got[0].Provisioned == nil {
		return fmt.Errorf("the laptop was not provisioned: %+v", got)
	}
	own, err := laptop.DeviceList(ctx, "alice")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "laptop is linked: its account's list, version %d, names %s\n", own.Version, deviceNames(own.Devices))

	got, err = receiveQuiet(ctx, r, "bob", bob.dev)
	if err != nil {
		return err
	}
	for _, in := range got {
		if in.Devices != nil {
			fmt.Fprintf(out, "bob   got alice's device list (version %d) in her notice: devices %s\n",
				in.Devices.Version, deviceNames(in.Devices.Added))
		}
	}

	// Bob checks the relay's copy against what he pinned, and starts a
	// session with the device he has none with.
	if _, err := bob.dev.UpdateDeviceList(ctx, "alice", r.lists["alice"]); err != nil {
		return err
	}
	need, err := bob.dev.NeedSessions(ctx, "alice")
	if err != nil {
		return err
	}
	for _, addr := range need {
		b, err := keys.ParseBundle(r.fetch(addr.String()), keys.WithClock(clock))
		if err != nil {
			return err
		}
		if err := bob.dev.StartSession(ctx, addr, b); err != nil {
			return err
		}
		fmt.Fprintf(out, "bob   fetches %s's bundle from the relay and starts a session with it\n", addr)
	}
	body := "See you both at noon!"
	fmt.Fprintf(out, "bob   sends %q to alice (SendUser): one envelope per device on her list\n", body)
	outs, err := bob.dev.SendUser(ctx, "alice", []byte(body))
	if err != nil {
		return err
	}
	for _, o := range outs {
		c.texts[o.ID] = body
	}
	if err := postAll(ctx, r, bob.dev, outs...); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		dev  *sealpost.Device
	}{{"alice", alice.dev}, {"laptop", laptop}} {
		got, err := receiveQuiet(ctx, r, d.name, d.dev)
		if err != nil {
			return err
		}
		for _, in := range got {
			if in.Kind == sealpost.KindMessage {
				fmt.Fprintf(out, "%-6s got %q from %s\n", d.name, in.Body, in.From)
			}
		}
	}
	return nil
}
