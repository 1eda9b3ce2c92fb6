package server

import "context"

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
