package sealpost

import (
	"time"

	"github.com/sealpost/sealpost/internal/receiptq"
)

// Defaults of the Device options, each with the reason for its value.
const (
	// DefaultReceiptDelayMin and DefaultReceiptDelayMax bound the random
	// delay before queued receipts leave (docs/SPEC.md §14). A receipt
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
	// DefaultMaxPendingPeers bounds the pending peers a Device keeps: peers
	// that started a session with us and that we have neither answered
	// (Send, StartSession) nor trusted (Trust), and identities other than
	// the pinned one at an address. Anyone with the public last-resort
	// bundle can make them, and sealed sender hides who does from the
	// relay, so a first contact beyond the bound evicts the oldest pending
	// peer (its records deleted as by Forget). 100 leaves room for a busy
	// inbox of message requests and bounds a flood to about 100 peers of a
	// few kilobytes each.
	DefaultMaxPendingPeers = 100
	// DefaultUnansweredCount and DefaultUnansweredAge are when Findings
	// reports a session as unanswered (transcript.Unanswered): that many
	// of our contents unacknowledged, and nothing received on the session
	// for that long. A peer that restored a backup or reinstalled without
	// telling us can read nothing we send and sends us nothing we can
	// read, and only this shows it; a peer whose phone is off for days
	// shows the same, so the finding says "may be broken". Ten messages
	// over three days is rare for a working session with automatic
	// delivery receipts, which come back within seconds to minutes.
	DefaultUnansweredCount = 10
	DefaultUnansweredAge   = 72 * time.Hour
	// PrekeyRotation is how often to call RotatePrekeys (and publish the
	// new Bundle): weekly, as Signal rotates signed prekeys. Bundle
	// rotates first by itself when the current prekeys are older.
	PrekeyRotation = 7 * 24 * time.Hour
	// PrekeyLifetime is the expiry a Device signs into its signed prekey
	// and mailbox key: a bundle older than this is refused by initiators
	// with ErrExpired, so a stale bundle a relay keeps serving (or one
	// taken from a device that stopped rotating) cannot start sessions
	// forever. Four rotations and some slack: a bundle published just
	// before a rotation stays usable for three more weeks.
	PrekeyLifetime = 30 * 24 * time.Hour
	// prekeyGrace is how long an old prekey is kept past its expiry, for
	// session starts made just before it (a start rides on every message
	// until the responder replies), and maxOldKeys bounds the old prekeys
	// kept, and so the device record, whatever the rotation rate.
	prekeyGrace = 7 * 24 * time.Hour
	maxOldKeys  = 8
	// maxReceiptBatch bounds the ids in one receipt content, and
	// maxQueuedReceipts the receipts queued per session.
	maxReceiptBatch   = 256
	maxQueuedReceipts = receiptq.Capacity // = maxReceiptBatch
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
	maxPending             int
	existing               bool
	unansweredCount        uint64
	unansweredAge          time.Duration
	listLifetime           time.Duration
	replies                bool
	mailboxRotation        time.Duration
}

func defaultOptions() options {
	return options{
		receiptMin: DefaultReceiptDelayMin, receiptMax: DefaultReceiptDelayMax,
		now: time.Now, autoDelivered: true,
		maxKept: DefaultMaxKept, keptAge: DefaultKeptAge, sessionMaxAge: DefaultMaxAge,
		maxPending:      DefaultMaxPendingPeers,
		unansweredCount: DefaultUnansweredCount, unansweredAge: DefaultUnansweredAge,
		listLifetime: DefaultDeviceListLifetime,
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

// WithClock replaces time.Now, for tests and simulations. It is also the
// clock StartSession checks a bundle's expiry with.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStrictIdentity makes an identity other than the pinned one an error
// (ErrIdentityChanged) until the app calls Trust, instead of the default:
// deliver its messages marked Unconfirmed, with an identity-changed
// finding, while the pinned identity's sessions go on (docs/SPEC.md §15.6;
// see Trust).
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

// WithDeviceListLifetime sets how long the device lists this device signs
// (as the holder of its account key) are valid; DefaultDeviceListLifetime
// when d is not positive.
func WithDeviceListLifetime(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.listLifetime = d
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

// WithMaxPendingPeers sets the bound on pending peers (default
// DefaultMaxPendingPeers; n < 1 keeps the default): at most n peers that
// contacted us and that we have neither answered nor trusted are kept, the
// oldest evicted by a newer first contact.
func WithMaxPendingPeers(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxPending = n
		}
	}
}

// WithUnanswered sets when Findings reports the current session with a
// peer as unanswered (transcript.Unanswered): count of our contents
// unacknowledged and nothing received on it for age (defaults
// DefaultUnansweredCount and DefaultUnansweredAge; a value below 1 keeps
// its default).
func WithUnanswered(count int, age time.Duration) Option {
	return func(o *options) {
		if count > 0 {
			o.unansweredCount = uint64(count)
		}
		if age > 0 {
			o.unansweredAge = age
		}
	}
}

// WithMailbox sets the mailbox id of a new Device (1 to 64 bytes; default:
// 16 random bytes). It is ignored when the store already holds a device.
func WithMailbox(id []byte) Option {
	return func(o *options) { o.mailbox = append([]byte(nil), id...) }
}

// WithExisting makes Open fail with ErrNotFound when the store holds no
// device, instead of creating one. Use it on every start but the first:
// a wrong store path or an emptied store then fails loudly, where creating
// a new identity would look to every peer like a reinstall.
func WithExisting() Option { return func(o *options) { o.existing = true } }
