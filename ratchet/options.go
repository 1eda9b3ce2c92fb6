package ratchet

import "fmt"

// Bounds. Each is a default that an Option may change for a new session; the
// values chosen are saved with the session.
const (
	// MaxSkip is how many message keys one message may skip in one chain
	// (Signal's MAX_SKIP). It bounds the work and memory a single message
	// can cost: 1000 HMAC steps, about 0.3 ms, and 1000 stored keys. Real
	// loss or reordering beyond 1000 messages in one chain means the
	// conversation needs a new session anyway.
	MaxSkip = 1000

	// MaxSkippedKeys is how many skipped message keys a session holds in
	// all its chains together. Past it the oldest are evicted first; a
	// message for an evicted key is ErrExpiredKey. Twice MaxSkip, so that a
	// message that skips the rest of the old chain and the start of the
	// new one always fits. Each key costs about 100 bytes of memory and 36
	// bytes of saved state.
	MaxSkippedKeys = 2 * MaxSkip

	// TagWindow is how many routing tags ahead the session expects in each
	// receiving chain (the current one from Nr, the next one from 0). A
	// message inside the window is found by its tag in O(1); one further
	// ahead is found by trial decryption (at most two header trials per
	// session). 64 covers ordinary loss and bursts; each tag costs an HMAC
	// and 16 bytes in the caller's lookup table.
	TagWindow = 64

	// ReplayRecord is how many consumed messages the session remembers by
	// routing tag and body authenticator, so that their replay is
	// ErrDuplicate without any decryption even after the chain they came
	// from is gone. 2 KiB of state. An older replay is still never
	// decrypted twice: it is ErrDuplicate while its chain is the receiving
	// chain, and ErrDecrypt (opens under no key) after that.
	ReplayRecord = 64

	// ExpiredRecord is how many evicted skipped keys the session remembers
	// by routing tag, so that their messages are ErrExpiredKey rather than
	// ErrDecrypt. It is only filled after more than MaxSkippedKeys messages
	// went missing, and costs 16 bytes each: one full chain of MaxSkip.
	ExpiredRecord = MaxSkip
)

// Upper limits of the options, so that a saved state cannot ask for
// unbounded work.
const (
	maxMaxSkip    = 1 << 16
	maxSkippedCap = 1 << 18
	maxTagWindow  = 1 << 10
)

// An Option changes a bound of a new session.
type Option func(*config)

type config struct {
	maxSkip    uint32
	maxSkipped uint32
	tagWindow  uint32
}

func defaultConfig() config {
	return config{maxSkip: MaxSkip, maxSkipped: MaxSkippedKeys, tagWindow: TagWindow}
}

// WithMaxSkip sets how many keys one message may skip in one chain. It
// panics unless 1 <= n <= 65536.
func WithMaxSkip(n int) Option {
	if n < 1 || n > maxMaxSkip {
		panic(fmt.Sprintf("sealpost/ratchet: WithMaxSkip(%d) out of range", n))
	}
	return func(c *config) { c.maxSkip = uint32(n) }
}

// WithMaxSkippedKeys sets how many skipped keys a session holds in total. It
// panics unless 1 <= n <= 262144. A session whose total is below twice its
// MaxSkip reports ErrTooManySkipped for a message that would need more.
func WithMaxSkippedKeys(n int) Option {
	if n < 1 || n > maxSkippedCap {
		panic(fmt.Sprintf("sealpost/ratchet: WithMaxSkippedKeys(%d) out of range", n))
	}
	return func(c *config) { c.maxSkipped = uint32(n) }
}

// WithTagWindow sets how many routing tags ahead each receiving chain
// expects. It panics unless 1 <= n <= 1024.
func WithTagWindow(n int) Option {
	if n < 1 || n > maxTagWindow {
		panic(fmt.Sprintf("sealpost/ratchet: WithTagWindow(%d) out of range", n))
	}
	return func(c *config) { c.tagWindow = uint32(n) }
}

// valid reports whether c is within the limits (used on loaded state).
func (c config) valid() bool {
	return c.maxSkip >= 1 && c.maxSkip <= maxMaxSkip &&
		c.maxSkipped >= 1 && c.maxSkipped <= maxSkippedCap &&
		c.tagWindow >= 1 && c.tagWindow <= maxTagWindow
}
