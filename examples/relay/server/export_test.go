package server

import (
	"context"
	"time"
)

// SkipMailboxAuth turns the mailbox signature check off, for the benchmark
// that measures what the check costs. It exists in test binaries only.
func (r *Relay) SkipMailboxAuth() { r.noAuth = true }

// MailboxConsumers returns the number of consumers of the mailbox stream:
// one per open mailbox connection (examples/relay/README.md).
func (r *Relay) MailboxConsumers(ctx context.Context) (int, error) {
	info, err := r.mailbox.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Consumers, nil
}

// MailboxConsumerDelivered returns, for each consumer of the mailbox
// stream, how many messages JetStream has sent it: read ahead into the
// relay, written to a client, or both.
func (r *Relay) MailboxConsumerDelivered(ctx context.Context) ([]uint64, error) {
	var n []uint64
	l := r.mailbox.ListConsumers(ctx)
	for ci := range l.Info() {
		n = append(n, ci.Delivered.Consumer)
	}
	return n, l.Err()
}

// StallNextDelivery makes the next mailbox connection's consumer a stalled
// one: the envelopes it yields are dropped, as if lost, until the stall
// check replaces it.
func (r *Relay) StallNextDelivery() { r.testStall.Store(true) }

// FailDeletes makes every DeleteMsg of an acknowledgement fail (on) or
// work again (off).
func (r *Relay) FailDeletes(on bool) { r.failDeletes.Store(on) }

// DeleteMailboxConsumers deletes every consumer of the mailbox stream
// behind the relay's back, as a NATS node lost with them would.
func (r *Relay) DeleteMailboxConsumers(ctx context.Context) error {
	l := r.mailbox.ListConsumers(ctx)
	var names []string
	for ci := range l.Info() {
		names = append(names, ci.Name)
	}
	if err := l.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if err := r.js.DeleteConsumer(ctx, MailboxStream, n); err != nil {
			return err
		}
	}
	return nil
}

// PauseMailboxConsumers pauses every consumer of the mailbox stream for
// an hour behind the relay's back: JetStream delivers them nothing more.
func (r *Relay) PauseMailboxConsumers(ctx context.Context) error {
	l := r.mailbox.ListConsumers(ctx)
	var names []string
	for ci := range l.Info() {
		names = append(names, ci.Name)
	}
	if err := l.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := r.js.PauseConsumer(ctx, MailboxStream, n, time.Now().Add(time.Hour)); err != nil {
			return err
		}
	}
	return nil
}
