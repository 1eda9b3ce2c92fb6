package sealpost

import "time"

// Defaults of the Device options, each with the reason for its value.
const (
	// DefaultReceiptDelayMin and DefaultReceiptDelayMax bound the random
	// delay before queued receipts leave (DESIGN section 3.4). A receipt
	// sent the moment a message arrives links sender and recipient in the
	// relay's logs (the statistical disclosure attack on sealed sender,
	// Martiny et al., NDSS 2021); seconds of jitter and batching blur that.
	DefaultReceiptDelayMin = 1 * time.Second
	DefaultReceiptDelayMax = 30 * time.Second
	// DefaultMaxKept bounds the received results a Device keeps per peer
	// until the app calls Done, and DefaultKeptAge how long it keeps them.
	// An app that calls Done promptly never reaches either; one that never
	// does cannot grow the store without bound.
	DefaultMaxKept = 1000
	DefaultKeptAge = 7 * 24 * time.Hour
	DefaultMaxAge  = 90 * 24 * time.Hour
	defaultOldKeys = 3 // rotated prekeys kept for late session starts
	// maxReceiptBatch bounds the ids in one receipt content, and
	// maxQueuedReceipts the receipts queued per session.
	maxReceiptBatch   = 256
	maxQueuedReceipts = maxReceiptBatch
)

// Option configures a Device at Open.
type Option func(*options)

type options struct {
	receiptMin, receiptMax time.Duration
	now                    func() time.Time
	strictIdentity         bool
	autoDelivered          bool
	maxKept                int
	keptAge                time.Duration
	sessionMaxAge          time.Duration
	mailbox                []byte
}

func defaultOptions() options {
	return options{
		receiptMin: DefaultReceiptDelayMin, receiptMax: DefaultReceiptDelayMax,
		now: time.Now, autoDelivered: true,
		maxKept: DefaultMaxKept, keptAge: DefaultKeptAge, sessionMaxAge: DefaultMaxAge,
	}
}

// WithReceiptDelay sets the range of the random delay before queued
// receipts are released by Flush. Zero for both sends them at the next
// Flush, which is faster and easier to correlate.
func WithReceiptDelay(min, max time.Duration) Option {
	return func(o *options) {
		if min < 0 {
			min = 0
		}
		if max < min {
			max = min
		}
		o.receiptMin, o.receiptMax = min, max
	}
}

// WithClock replaces time.Now, for tests and simulations.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStrictIdentity makes a changed peer identity an error
// (ErrIdentityChanged) until the app calls Trust, instead of the default:
// accept it and report an identity-changed finding (DESIGN section 3.5).
func WithStrictIdentity() Option { return func(o *options) { o.strictIdentity = true } }

// WithDeliveryReceipts turns the automatic delivery receipt on receive on
// (the default) or off; with it off, the app sends them with Acknowledge.
func WithDeliveryReceipts(auto bool) Option { return func(o *options) { o.autoDelivered = auto } }

// WithKeptLimits bounds the received results kept per peer until Done: at
// most count, none older than age.
func WithKeptLimits(count int, age time.Duration) Option {
	return func(o *options) {
		if count > 0 {
			o.maxKept = count
		}
		if age > 0 {
			o.keptAge = age
		}
	}
}

// WithSessionMaxAge sets how long a session may go without receiving
// anything before Send refuses it with ErrNoSession, so that the app fetches
// a fresh bundle instead of writing into a session the peer may have lost.
func WithSessionMaxAge(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.sessionMaxAge = d
		}
	}
}

// WithMailbox sets the mailbox id of a new Device (1 to 64 bytes; default:
// 16 random bytes). It is ignored when the store already holds a device.
func WithMailbox(id []byte) Option {
	return func(o *options) { o.mailbox = append([]byte(nil), id...) }
}
