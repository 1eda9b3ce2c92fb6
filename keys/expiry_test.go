package keys

import (
	"errors"
	"testing"
	"time"
)

// bundleExpiring returns Bob's bundle with its signed prekey and mailbox
// key signed with the given expiries.
func bundleExpiring(t *testing.T, spk, mk time.Time) *Bundle {
	t.Helper()
	bob := bobSpec().build(t)
	b := bob.bundle()
	b.SignedPrekey = bobSPKExpiring(t, bob, spk)
	b.MailboxKey = bobMKExpiring(t, bob, mk)
	return b
}

// TestBundleExpiry (issue 14): a bundle is accepted strictly before the
// earlier of its signed prekey's and mailbox key's expiries and refused
// with ErrExpired from then on, by ParseBundle, Verify and Initiate, at the
// time of the WithClock option (time.Now without it). A bad signature is
// reported as such even on an expired bundle.
func TestBundleExpiry(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	at := func(tm time.Time) VerifyOption { return WithClock(func() time.Time { return tm }) }
	for _, tc := range []struct {
		name    string
		spk, mk time.Time
		expires time.Time
	}{
		{"signed prekey first", t0, t0.Add(time.Hour), t0},
		{"mailbox key first", t0.Add(time.Hour), t0, t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bundleExpiring(t, tc.spk, tc.mk)
			raw := marshalBundle(t, b)
			for _, c := range []struct {
				now  time.Time
				want error
			}{
				{tc.expires.Add(-time.Second), nil},
				{tc.expires.Add(-time.Nanosecond), nil},
				{tc.expires, ErrExpired},
				{tc.expires.Add(365 * 24 * time.Hour), ErrExpired},
			} {
				got, err := ParseBundle(raw, at(c.now))
				if !errors.Is(err, c.want) || (err == nil) != (got != nil) {
					t.Fatalf("ParseBundle at %v: %v, want %v", c.now, err, c.want)
				}
				if err := b.Verify(at(c.now)); !errors.Is(err, c.want) {
					t.Fatalf("Verify at %v: %v, want %v", c.now, err, c.want)
				}
				alice := aliceSpec().build(t)
				m, k, err := initiate(alice.id, alice.addr, b, testEphSeed, testKEMSeed, at(c.now))
				if !errors.Is(err, c.want) || (err != nil) != (m == nil && k == nil) {
					t.Fatalf("initiate at %v: %v, want %v", c.now, err, c.want)
				}
			}
			// The default clock is time.Now: t0 (2030) is in the future
			// for this test's lifetime, 2001 is in the past.
			if _, err := ParseBundle(raw); err != nil {
				t.Fatalf("ParseBundle with time.Now: %v", err)
			}
			old := bundleExpiring(t, time.Unix(1_000_000_000, 0), tc.mk)
			if _, err := ParseBundle(marshalBundle(t, old)); !errors.Is(err, ErrExpired) {
				t.Fatalf("a bundle expired in 2001 with time.Now: %v", err)
			}
			// Signatures are checked before the expiry.
			b.SignedPrekey.signature[0] ^= 1
			if err := b.Verify(at(tc.expires)); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("expired with a bad signature: %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestExpiryRange: an expiry must be a whole second in 1970-01-01T00:00:01
// .. 9999-12-31; anything else is ErrMalformed when signing, and a bundle
// whose signed expiry is changed (to 0 or another value) is refused.
func TestExpiryRange(t *testing.T) {
	bob := bobSpec().build(t)
	for _, tm := range []time.Time{{}, time.Unix(0, 0), time.Unix(-5, 0), time.Unix(maxExpiry+1, 0)} {
		if _, err := NewSignedPrekey(1, bob.spk.Bytes(), tm, bob.id); !errors.Is(err, ErrMalformed) {
			t.Errorf("NewSignedPrekey expiring %v: %v", tm, err)
		}
		if _, err := NewMailboxKey(1, bob.addr, bob.mailbox, bob.mk.Bytes(), tm, bob.id); !errors.Is(err, ErrMalformed) {
			t.Errorf("NewMailboxKey expiring %v: %v", tm, err)
		}
	}
	b := bob.bundle()
	b.SignedPrekey.Expires = b.SignedPrekey.Expires.Add(time.Second) // not what was signed
	if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a changed expiry: %v, want ErrBadSignature", err)
	}
	b.SignedPrekey.Expires = time.Time{}
	if err := b.Verify(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no expiry: %v, want ErrMalformed", err)
	}
}
