package boltstore

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// Accounts of several devices for the fan-out crash harness
// (crash_fanout_test.go) and BenchmarkFanOutSend, set up as the library's
// own account tests do (newACWorld in account_test.go, whose helpers this
// module cannot import): the first device of each user makes the account
// (NewAccount), every other one is linked to it through the relay
// (LinkCode, Approve with the new device's bundle, the provisioning
// received), and then each device pins every other account's list
// (UpdateDeviceList) and starts a session with each device a SendUser
// needs (NeedSessions, StartSession from a fresh bundle).

// fanNet is an in-process relay for the setup: a queue per mailbox.
type fanNet struct {
	boxes map[string][][]byte
	devs  []*sealpost.Device
}

func newFanNet() *fanNet { return &fanNet{boxes: map[string][][]byte{}} }

// post queues outs at their mailboxes and reports them Sent on from.
func (n *fanNet) post(ctx context.Context, from *sealpost.Device, outs ...*sealpost.Outgoing) error {
	for _, o := range outs {
		n.boxes[string(o.Mailbox)] = append(n.boxes[string(o.Mailbox)], o.Envelope)
	}
	return from.Sent(ctx, outs...)
}

// drain receives everything queued for d, in order, calling Done.
func (n *fanNet) drain(ctx context.Context, d *sealpost.Device) ([]*sealpost.Incoming, error) {
	var got []*sealpost.Incoming
	box := string(d.Mailbox())
	for len(n.boxes[box]) > 0 {
		env := n.boxes[box][0]
		n.boxes[box] = n.boxes[box][1:]
		in, err := d.Receive(ctx, env)
		if err != nil {
			return got, fmt.Errorf("%v: Receive: %w", d.Address(), err)
		}
		if err := d.Done(ctx, in.ID); err != nil {
			return got, err
		}
		got = append(got, in)
	}
	return got, nil
}

// settle delivers everything queued, and the receipts that makes, until
// nothing is left.
func (n *fanNet) settle(ctx context.Context) error {
	for range 10 {
		for _, d := range n.devs {
			if _, err := n.drain(ctx, d); err != nil {
				return err
			}
		}
		for _, d := range n.devs {
			outs, err := d.Flush(ctx)
			if err != nil {
				return err
			}
			if err := n.post(ctx, d, outs...); err != nil {
				return err
			}
		}
		left := 0
		for _, q := range n.boxes {
			left += len(q)
		}
		if left == 0 {
			return nil
		}
	}
	return fmt.Errorf("the setup's envelopes do not settle")
}

// fanBundle returns a fresh bundle of d (with a one-time prekey), as the
// relay would serve it.
func fanBundle(ctx context.Context, d *sealpost.Device) (*keys.Bundle, error) {
	b, err := d.NewBundle(ctx, 1)
	if err != nil {
		return nil, err
	}
	raw, err := b.Split()[0].MarshalBinary()
	if err != nil {
		return nil, err
	}
	return keys.ParseBundle(raw)
}

// link links nd to approver's account as name (sharing the account key
// when share is set), posts the notices and the provisioning, and has nd
// receive its provisioning.
func (n *fanNet) link(ctx context.Context, approver, nd *sealpost.Device, name string, share bool) error {
	code, err := nd.LinkCode(ctx, name)
	if err != nil {
		return err
	}
	scanned, err := keys.ParseLinkCode(code.Bytes())
	if err != nil {
		return err
	}
	b, err := fanBundle(ctx, nd)
	if err != nil {
		return err
	}
	ap, err := approver.Approve(ctx, scanned, b, sealpost.ApproveOptions{ShareAccountKey: share})
	if err != nil {
		return err
	}
	if err := n.post(ctx, approver, ap.Notices...); err != nil {
		return err
	}
	if err := n.post(ctx, approver, ap.Provision); err != nil {
		return err
	}
	in, err := n.drain(ctx, nd)
	if err != nil {
		return err
	}
	if len(in) != 1 || in[0].Provisioned == nil || in[0].Kind != sealpost.KindAccount {
		return fmt.Errorf("%v: provisioning not received: %+v", nd.Address(), in)
	}
	return nil
}

// connectAll starts a session from from with every device a SendUser to
// user needs, from their fresh bundles.
func connectAll(ctx context.Context, from *sealpost.Device, user string, devs []*sealpost.Device) error {
	need, err := from.NeedSessions(ctx, user)
	if err != nil {
		return err
	}
	for _, addr := range need {
		var found *sealpost.Device
		for _, d := range devs {
			if d.Address() == addr {
				found = d
			}
		}
		if found == nil {
			return fmt.Errorf("%v needs a session with %v, which the setup does not have", from.Address(), addr)
		}
		b, err := fanBundle(ctx, found)
		if err != nil {
			return err
		}
		if err := from.StartSession(ctx, addr, b); err != nil {
			return err
		}
	}
	return nil
}

// fanAccounts makes one account per group (the group's devices all of one
// user, the first one making the account and approving the others; the
// first group's share the account key), has every device pin every other
// account's list and start the sessions SendUser needs, and delivers
// everything that made. Every device's outbox is empty after it.
func fanAccounts(ctx context.Context, groups ...[]*sealpost.Device) error {
	n := newFanNet()
	lists := map[string]*keys.DeviceList{}
	for gi, g := range groups {
		n.devs = append(n.devs, g...)
		first := g[0]
		if _, err := first.NewAccount(ctx, fmt.Sprintf("%s's device %d", first.Address().User, first.Address().Device)); err != nil {
			return err
		}
		for _, d := range g[1:] {
			if err := n.link(ctx, first, d, fmt.Sprintf("%s's device %d", d.Address().User, d.Address().Device), gi == 0); err != nil {
				return err
			}
			if err := n.settle(ctx); err != nil {
				return err
			}
		}
		l, err := first.DeviceList(ctx, first.Address().User)
		if err != nil {
			return err
		}
		lists[first.Address().User] = l
	}
	for _, g := range groups {
		for _, d := range g {
			for user, l := range lists {
				if user == d.Address().User {
					continue
				}
				if _, err := d.UpdateDeviceList(ctx, user, l.Bytes()); err != nil {
					return err
				}
				if err := connectAll(ctx, d, user, n.devs); err != nil {
					return err
				}
			}
		}
	}
	return n.settle(ctx)
}
