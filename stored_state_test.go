package sealpost_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/statepb"
	"google.golang.org/protobuf/proto"
)

// dmCorruptions returns the corrupted variants of a stored value: bit
// flips, truncations, garbage of the same and other lengths, and nothing.
func dmCorruptions(v []byte, rng *rand.Rand) map[string][]byte {
	out := map[string][]byte{"empty": {}}
	positions := []int{0, 1, 2, len(v) / 3, len(v) / 2, len(v) - 2, len(v) - 1}
	for range 4 {
		positions = append(positions, rng.IntN(max(len(v), 1)))
	}
	for _, i := range positions {
		if i < 0 || i >= len(v) {
			continue
		}
		f := bytes.Clone(v)
		f[i] ^= 1 << rng.IntN(8)
		out[fmt.Sprintf("flip@%d", i)] = f
		out[fmt.Sprintf("truncate@%d", i)] = bytes.Clone(v[:i])
	}
	g := make([]byte, len(v))
	for i := range g {
		g[i] = byte(rng.Uint32())
	}
	out["garbage"] = g
	out["garbage short"] = g[:min(len(g), 7)]
	out["trailing byte"] = append(bytes.Clone(v), 0x01)
	return out
}

// dmConversationStore builds a store with every kind of record in use: a
// device with two peers, sessions, queued receipts, kept results not yet
// Done, and seen base keys. It returns Bob and the envelopes he received
// (for redelivery against the kept records).
func dmConversationStore(t testing.TB, c *clock) (*party, []*sealpost.Outgoing) {
	t.Helper()
	bob := newParty(t, "bob", c)
	alice, carol := newParty(t, "alice", c), newParty(t, "carol", c)
	connect(t, alice, bob)
	dmStart(t, carol, bob, dmBlob(t, bob, 0, 0))
	var got []*sealpost.Outgoing
	for i := range 3 {
		for _, p := range []*party{alice, carol} {
			o := send(t, p, bob, fmt.Sprint("hello ", i))
			in, err := bob.Receive(ctx, o.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			if i < 2 {
				if err := bob.Done(ctx, in.ID); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, o)
		}
	}
	receive(t, alice, send(t, bob, alice, "hi alice"))
	return bob, got
}

// TestCorruptStoredState corrupts every record of a device's store in turn
// (bit flips, truncations, garbage) and opens the device: a typed error
// (ErrMalformed or ErrUnsupportedVersion) or a device that works with
// typed errors (records Open does not read, fields without a check), never
// a panic, never an untyped error. Corruptions Open accepts are logged
// (TESTING.md item 37).
func TestCorruptStoredState(t *testing.T) {
	c := newClock()
	bob, got := dmConversationStore(t, c)
	snap := bob.store.Snapshot()
	rng := rand.New(rand.NewPCG(37, 37))
	accepted := map[string][]string{} // key kind -> corruptions Open accepted
	var notFound []string
	for _, key := range slices.Sorted(maps.Keys(snap)) {
		for name, v := range dmCorruptions(snap[key], rng) {
			s := sealpost.NewMemoryStore()
			m := maps.Clone(snap)
			m[key] = v
			s.Restore(m)
			d, err := dmOpenNoPanic(t, s, bob.addr, c, key+" "+name)
			switch {
			case errors.Is(err, sealpost.ErrMalformed), errors.Is(err, sealpost.ErrUnsupportedVersion):
				continue
			case errors.Is(err, sealpost.ErrNotFound):
				notFound = append(notFound, fmt.Sprintf("%s %s: %v", key, name, err))
				continue
			case err != nil:
				t.Errorf("%s %s: Open returned %v, want ErrMalformed or ErrUnsupportedVersion", key, name, err)
				continue
			}
			kind, _, _ := strings.Cut(key, "/")
			accepted[kind] = append(accepted[kind], name)
			// The device must then work or fail with typed errors.
			for _, o := range got {
				if _, err := dmReceiveNoPanic(t, d, o.Envelope, key+" "+name); err != nil && !dmTyped(err) {
					t.Errorf("%s %s: Receive after Open: untyped error %v", key, name, err)
				}
			}
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(accepted)) {
		names := accepted[kind]
		slices.Sort(names)
		t.Logf("corruptions of %q records that Open accepted: %d (%s)", kind, len(names), strings.Join(names, ", "))
	}
	if len(notFound) > 0 && !t.Failed() {
		t.Fatalf("regression of a fixed bug: device.go load returns the store's ErrNotFound, not ErrMalformed, when a corrupted device record lists a peer key that does not exist, so an app may take a corrupted store for an absent record (%d cases, e.g. %s)", len(notFound), notFound[0])
	}
}

// TestCorruptIdentitySeed flips one bit of the identity seed inside the
// stored device record: the device must refuse to open (ErrMalformed)
// rather than silently become another identity (TESTING.md item 37: "no silent
// reset").
func TestCorruptIdentitySeed(t *testing.T) {
	c := newClock()
	bob, _ := dmConversationStore(t, c)
	snap := bob.store.Snapshot()
	rec := new(statepb.Device)
	if err := pbstrict.Unmarshal(dmRecordValue(t, "device", snap["device"]), rec); err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(snap["device"], rec.IdentitySeed)
	if at < 0 {
		t.Fatal("the identity seed is not in the stored record")
	}
	snap["device"][at+7] ^= 0x20
	s := sealpost.NewMemoryStore()
	s.Restore(snap)
	d, err := dmOpenNoPanic(t, s, bob.addr, c, "identity seed")
	if err != nil {
		if !errors.Is(err, sealpost.ErrMalformed) {
			t.Fatalf("Open: %v, want ErrMalformed", err)
		}
		return
	}
	if !d.Identity().Equal(bob.Identity()) {
		t.Fatal("regression of a fixed bug: a device record with one bit flipped in identity_seed opens without error as a different identity, so peers see an identity change instead of the app seeing ErrMalformed")
	}
}

// dmRecordValue returns the value of a stored record: the bytes before the
// CRC-32C trailer that records.go appends (over the key, then the value),
// which it checks.
func dmRecordValue(t testing.TB, key string, raw []byte) []byte {
	t.Helper()
	n := len(raw) - 4
	if n < 0 || !bytes.Equal(dmRecord(key, raw[:n]), raw) {
		t.Fatalf("record %q has no valid checksum trailer", key)
	}
	return raw[:n:n]
}

// dmRecord returns value as a Device stores it under key: with its
// CRC-32C trailer. Tests use it to write well-formed records of another
// version.
func dmRecord(key string, value []byte) []byte {
	c := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), []byte(key))
	c = crc32.Update(c, crc32.MakeTable(crc32.Castagnoli), value)
	return binary.BigEndian.AppendUint32(bytes.Clone(value), c)
}

func dmOpenNoPanic(t testing.TB, s sealpost.Store, addr sealpost.Address, c *clock, what string) (d *sealpost.Device, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: Open panicked: %v", what, r)
		}
	}()
	return sealpost.Open(ctx, s, addr, sealpost.WithClock(c.now))
}

func dmReceiveNoPanic(t testing.TB, d *sealpost.Device, raw []byte, what string) (in *sealpost.Incoming, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: Receive panicked: %v", what, r)
		}
	}()
	return d.Receive(ctx, raw)
}

// TestStoredVersions sets the version of each stored record to one this
// build does not know: Open (or, for kept results, the redelivery that
// reads them) returns ErrUnsupportedVersion (TESTING.md item 37).
func TestStoredVersions(t *testing.T) {
	c := newClock()
	bob, got := dmConversationStore(t, c)
	if err := bob.Block(ctx, sealpost.Sender{Address: sealpost.Address{User: "spam", Device: 1}}); err != nil {
		t.Fatal(err)
	}
	snap := bob.store.Snapshot()
	peerKey := "peer/" + sealpost.Address{User: "alice", Device: 1}.String()
	keptIdx := "keptidx/" + sealpost.Address{User: "alice", Device: 1}.String()
	var keptKey, sessKey, seenKey string
	for k := range snap {
		if strings.HasPrefix(k, "kept/") {
			keptKey = k
		}
		if strings.HasPrefix(k, "sess/") {
			sessKey = k
		}
		if strings.HasPrefix(k, "seen/") {
			seenKey = k
		}
	}
	if keptKey == "" || sessKey == "" || seenKey == "" || snap["peers/0"] == nil || snap["block"] == nil {
		t.Fatal("no kept result, session, accepted starts, peer directory or block record in the store")
	}
	withVersion := func(t *testing.T, key string, set func(raw []byte) []byte) sealpost.Store {
		t.Helper()
		m := maps.Clone(snap)
		m[key] = dmRecord(key, set(dmRecordValue(t, key, snap[key])))
		s := sealpost.NewMemoryStore()
		s.Restore(m)
		return s
	}
	recode := func(t *testing.T, raw []byte, msg proto.Message, edit func()) []byte {
		t.Helper()
		if err := pbstrict.Unmarshal(raw, msg); err != nil {
			t.Fatal(err)
		}
		edit()
		out, err := pbstrict.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name string
		key  string
		edit func(t *testing.T, raw []byte) []byte
		bug  string // non-empty: a known bug, reported by t.Skip
	}{
		{"device", "device", func(t *testing.T, raw []byte) []byte {
			m := new(statepb.Device)
			return recode(t, raw, m, func() { m.Version = 99 })
		}, ""},
		{"device version 0", "device", func(t *testing.T, raw []byte) []byte {
			m := new(statepb.Device)
			return recode(t, raw, m, func() { m.Version = 0 })
		}, ""},
		{"peer", peerKey, func(t *testing.T, raw []byte) []byte {
			m := new(statepb.Peer)
			return recode(t, raw, m, func() { m.Version = 99 })
		}, ""},
		{"kept index", keptIdx, func(t *testing.T, raw []byte) []byte { return withByte(raw, 0, 99) }, ""},
		{"session", sessKey, func(t *testing.T, raw []byte) []byte { return withByte(raw, 0, 99) }, ""},
		{"ratchet state", sessKey, func(t *testing.T, raw []byte) []byte {
			// The ratchet's head lives in the session record, after the
			// transcript head (length at byte 52) and its own length.
			out := bytes.Clone(raw)
			out[56+int(binary.BigEndian.Uint32(out[52:]))+2] = 99 // its version byte
			return out
		}, ""},
		{"transcript state", sessKey, func(t *testing.T, raw []byte) []byte {
			// The session record's transcript head starts at byte 56
			// (internal/sessrec): version, flags, two times, base key
			// length and base key, head length.
			return withByte(raw, 1+1+8+8+1+33+4, 99)
		}, ""},
		{"signed prekey record", "device", func(t *testing.T, raw []byte) []byte {
			m := new(statepb.Device)
			return recode(t, raw, m, func() { m.SignedPrekeys[0].Version = 1 }) // retired: no expiry
		}, ""},
		{"mailbox key record", "device", func(t *testing.T, raw []byte) []byte {
			m := new(statepb.Device)
			return recode(t, raw, m, func() { m.MailboxKeys[0].Version = 3 })
		}, ""},
		{"peer directory", "peers/0", func(t *testing.T, raw []byte) []byte { return withByte(raw, 0, 99) }, ""},
		{"block record", "block", func(t *testing.T, raw []byte) []byte { return withByte(raw, 0, 3) }, ""},
		{"device version 2 with a field this build lacks", "device", func(t *testing.T, raw []byte) []byte {
			m := new(statepb.Device)
			out := recode(t, raw, m, func() { m.Version = 99 })
			return append(out, 0xF8, 0x07, 0x01) // field 127, varint 1
		}, "device.go load unmarshals strictly before it reads the version, so a later version that adds a field is ErrMalformed, not ErrUnsupportedVersion (transcript.UnmarshalBinary reads the version first)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := withVersion(t, tt.key, func(raw []byte) []byte { return tt.edit(t, raw) })
			_, err := dmOpenNoPanic(t, s, bob.addr, c, tt.name)
			if !errors.Is(err, sealpost.ErrUnsupportedVersion) && !(tt.name == "device version 0" && errors.Is(err, sealpost.ErrMalformed)) {
				if tt.bug != "" {
					t.Fatalf("regression of a fixed bug: %s (Open returned %v)", tt.bug, err)
				}
				t.Fatalf("Open: %v, want ErrUnsupportedVersion", err)
			}
		})
	}
	// Accepted starts are read when a start names their signed prekey.
	t.Run("accepted starts", func(t *testing.T) {
		s := withVersion(t, seenKey, func(raw []byte) []byte { return withByte(raw, 0, 3) })
		d, err := dmOpenNoPanic(t, s, bob.addr, c, "accepted starts")
		if err != nil {
			t.Fatal(err)
		}
		p := &party{Device: d, addr: bob.addr, store: s.(*sealpost.MemoryStore)}
		env, _ := akNewPeer("stranger").start(t, akBundles(t, p, 0)[0]).send("hi")
		if _, err := d.Receive(ctx, env); !errors.Is(err, sealpost.ErrUnsupportedVersion) {
			t.Fatalf("a start naming the prekey: %v, want ErrUnsupportedVersion", err)
		}
	})
	t.Run("kept result", func(t *testing.T) {
		s := withVersion(t, keptKey, func(raw []byte) []byte { return withByte(raw, 0, 99) })
		d, err := dmOpenNoPanic(t, s, bob.addr, c, "kept result")
		if err != nil {
			t.Fatal(err)
		}
		var errs []error
		for _, o := range got {
			if _, err := d.Receive(ctx, o.Envelope); err != nil && !errors.Is(err, sealpost.ErrDuplicate) {
				errs = append(errs, err)
			}
		}
		if len(errs) != 1 {
			t.Fatalf("redelivering every envelope: errors %v, want one for the kept result", errs)
		}
		if !errors.Is(errs[0], sealpost.ErrUnsupportedVersion) {
			t.Fatalf("regression of a fixed bug: receive.go keptResult reports a kept result of another version as ErrMalformed, not ErrUnsupportedVersion (got %v)", errs[0])
		}
	})
}
