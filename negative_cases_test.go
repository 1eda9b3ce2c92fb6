package sealpost_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
	"github.com/sealpost/sealpost/ratchet"
)

// metaFixture is the device every negative case of TestNegativeCasesMeta
// is fed to: Bob on a faultyStore (Apply counted), with an established
// session with Alice (a Device) and with two hand-made peers (one to seal
// arbitrary contents on a session, one to run far ahead of its chain).
type metaFixture struct {
	t       *testing.T
	h       *akErrs
	c       *clock
	bob     *party
	fs      *faultyStore
	alice   *party
	carol   *party // has a session started by Alice, for misrouted envelopes
	hand    *akSession
	skipper *akSession
	first   *sealpost.Outgoing // Alice's first contact, received and Done
	n       int
}

func newMetaFixture(t *testing.T) *metaFixture {
	fx := &metaFixture{t: t, h: akTrack(t), c: newClock()}
	fx.bob, fx.fs = newFaultyParty(t, "bob", fx.c)
	fx.alice = newParty(t, "alice", fx.c, sealpost.WithReceiptDelay(0, 0))
	fx.carol = newParty(t, "carol", fx.c)
	fx.h.device(fx.bob)
	fx.h.device(fx.alice)
	connect(t, fx.alice, fx.bob)
	fx.first = send(t, fx.alice, fx.bob, "first contact")
	receive(t, fx.bob, fx.first)
	receive(t, fx.alice, send(t, fx.bob, fx.alice, "hello alice"))
	connect(t, fx.alice, fx.carol)
	fx.hand = fx.handSession("hand", fx.blob(0))
	fx.skipper = fx.handSession("skipper", fx.blob(0))
	return fx
}

// blob returns a fresh blob of Bob's bundle with n one-time prekeys (the
// first blob, which has them when n > 0).
func (fx *metaFixture) blob(n int) *keys.Bundle { return akBundles(fx.t, fx.bob, n)[0] }

// handSession starts a session with Bob from a hand-made peer and
// completes one round trip, so it is confirmed on both sides.
func (fx *metaFixture) handSession(user string, blob *keys.Bundle) *akSession {
	p := akNewPeer(user)
	s := p.start(fx.t, blob)
	fx.h.peer(p, s)
	env, _ := s.send("hello from " + user)
	advAccept(fx.t, fx.bob, env, "hello from "+user)
	s.receive(send(fx.t, fx.bob, &party{addr: p.addr}, "hello "+user).Envelope)
	return s
}

// fresh returns a genuine envelope from Alice to Bob, not yet delivered.
func (fx *metaFixture) fresh() *sealpost.Outgoing {
	fx.n++
	return send(fx.t, fx.alice, fx.bob, fmt.Sprint("genuine ", fx.n))
}

// reroute returns env with its routing header naming mailbox instead.
func reroute(t testing.TB, env, mailbox []byte) []byte {
	t.Helper()
	h, body, err := wire.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendEnvelope(nil, mailbox, h.Tag, body)
}

// flipAt returns env with one bit flipped at i (negative: from the end).
func flipAt(env []byte, i int) []byte {
	out := bytes.Clone(env)
	if i < 0 {
		i += len(out)
	}
	out[i] ^= 0x01
	return out
}

// metaCase is one negative case: build makes the bad envelope (and may
// first change Bob's state, as a setup), and may return the untouched
// original, which must then be accepted.
type metaCase struct {
	item  string // the TESTING.md checklist item
	name  string
	build func(fx *metaFixture) (bad []byte, original []byte)
	want  []error // empty: any sentinel
}

// metaCases is every Device-level negative case of the root tests, built
// with the same means as the tests that own them.
func metaCases() []metaCase {
	session := func(mut func(fx *metaFixture, env []byte, hdr int) []byte) func(fx *metaFixture) ([]byte, []byte) {
		return func(fx *metaFixture) ([]byte, []byte) {
			o := fx.fresh()
			return mut(fx, o.Envelope, wire.HeaderSize(len(fx.bob.Mailbox()))), o.Envelope
		}
	}
	var cases []metaCase
	add := func(item, name string, want []error, build func(fx *metaFixture) ([]byte, []byte)) {
		cases = append(cases, metaCase{item: item, name: name, build: build, want: want})
	}
	malformed := []error{sealpost.ErrMalformed}
	decrypt := []error{sealpost.ErrDecrypt}
	duplicate := []error{sealpost.ErrDuplicate}
	unknownPrekey := []error{sealpost.ErrUnknownPrekey}

	// Garbage, truncation, trailing bytes, size and version (22, 23).
	add("23", "empty", malformed, func(fx *metaFixture) ([]byte, []byte) { return nil, nil })
	add("23", "one byte", nil, func(fx *metaFixture) ([]byte, []byte) { return []byte{1}, nil })
	add("23", "routing header only", nil, func(fx *metaFixture) ([]byte, []byte) {
		return wire.AppendHeader(nil, fx.bob.Mailbox(), [16]byte{1}, 0), nil
	})
	for _, cut := range []struct {
		name string
		at   func(n, hdr int) int
	}{
		{"header and 17 bytes", func(n, hdr int) int { return hdr + 17 }},
		{"half", func(n, hdr int) int { return n / 2 }},
		{"all but one byte", func(n, hdr int) int { return n - 1 }},
	} {
		add("23", "session envelope truncated to "+cut.name, nil, session(func(fx *metaFixture, env []byte, hdr int) []byte { return env[:cut.at(len(env), hdr)] }))
	}
	add("23", "session envelope with a trailing byte", nil, session(func(fx *metaFixture, env []byte, hdr int) []byte { return append(bytes.Clone(env), 0) }))
	add("23", "oversize envelope", []error{sealpost.ErrTooLarge, sealpost.ErrMalformed}, func(fx *metaFixture) ([]byte, []byte) {
		return wire.AppendEnvelope(nil, fx.bob.Mailbox(), [16]byte{2}, make([]byte, envelope.MaxSize)), nil
	})
	add("23", "envelope version 1 (retired)", []error{sealpost.ErrUnsupportedVersion}, session(func(fx *metaFixture, env []byte, hdr int) []byte {
		out := bytes.Clone(env)
		out[0] = 1
		return out
	}))
	for _, f := range []struct {
		name string
		at   func(hdr int) int
	}{
		{"routing tag", func(hdr int) int { return hdr - 3 }},
		{"ratchet version", func(hdr int) int { return hdr }},
		{"encrypted header", func(hdr int) int { return hdr + 20 }},
		{"body nonce", func(hdr int) int { return hdr + 1 + 56 + 2 }},
		{"body", func(hdr int) int { return hdr + 1 + 56 + 12 + 30 }},
		{"body AEAD tag", func(hdr int) int { return -1 }},
	} {
		add("22", "session envelope, "+f.name+" flipped", nil, session(func(fx *metaFixture, env []byte, hdr int) []byte { return flipAt(env, f.at(hdr)) }))
	}
	add("22", "first contact, sealed body flipped", decrypt, func(fx *metaFixture) ([]byte, []byte) {
		connect(fx.t, fx.carol, fx.bob)
		o := send(fx.t, fx.carol, fx.bob, "carol's first contact")
		return flipAt(o.Envelope, len(o.Envelope)/2), o.Envelope
	})

	// Replays and forgeries on a session (19, 20, 6).
	add("19", "session envelope replayed after Done", duplicate, func(fx *metaFixture) ([]byte, []byte) {
		o := fx.fresh()
		receive(fx.t, fx.bob, o)
		return o.Envelope, nil
	})
	add("6", "first contact replayed after Done", duplicate, func(fx *metaFixture) ([]byte, []byte) { return fx.first.Envelope, nil })
	add("19", "consumed routing tag with another body", []error{sealpost.ErrDecrypt, sealpost.ErrDuplicate}, func(fx *metaFixture) ([]byte, []byte) {
		o := fx.fresh()
		receive(fx.t, fx.bob, o)
		bad := bytes.Clone(o.Envelope)
		rand.Read(bad[len(bad)-40:])
		return bad, nil
	})
	add("20", "unknown routing tag, random body", decrypt, func(fx *metaFixture) ([]byte, []byte) {
		var tag [16]byte
		rand.Read(tag[:])
		body := make([]byte, 1+56+12+256+16)
		rand.Read(body)
		body[0] = ratchet.Version
		return wire.AppendEnvelope(nil, fx.bob.Mailbox(), tag, body), nil
	})
	add("15", "message MaxSkip+1 ahead of its chain", []error{sealpost.ErrTooManySkipped}, func(fx *metaFixture) ([]byte, []byte) {
		s := fx.skipper
		for range ratchet.MaxSkip + 1 {
			_, padded, _ := s.content(sealpost.KindMessage, []byte("skipped"), nil)
			s.encrypt(padded)
		}
		_, padded, _ := s.content(sealpost.KindMessage, []byte("too far"), nil)
		tag, msg := s.encrypt(padded)
		return s.frame(tag, msg), nil
	})

	// Misrouted and reflected envelopes (41, 42).
	add("41", "session envelope routed to another mailbox", malformed, session(func(fx *metaFixture, env []byte, hdr int) []byte {
		return reroute(fx.t, env, []byte("another mailbox"))
	}))
	add("41", "first contact sealed to another device's mailbox key", decrypt, func(fx *metaFixture) ([]byte, []byte) {
		o := send(fx.t, fx.alice, fx.carol, "for carol")
		return reroute(fx.t, o.Envelope, fx.bob.Mailbox()), nil
	})
	add("42", "Bob's own envelope reflected as sent", malformed, func(fx *metaFixture) ([]byte, []byte) {
		o := send(fx.t, fx.bob, fx.alice, "reflected")
		receive(fx.t, fx.alice, o)
		return o.Envelope, nil
	})
	add("42", "Bob's own envelope reflected to his mailbox", decrypt, func(fx *metaFixture) ([]byte, []byte) {
		o := send(fx.t, fx.bob, fx.alice, "reflected")
		receive(fx.t, fx.alice, o)
		return reroute(fx.t, o.Envelope, fx.bob.Mailbox()), nil
	})

	// Session starts (4, 5, 7, 8, 9, 10).
	handStart := func(edit func(fx *metaFixture, m *sealedpb.SessionStart)) func(fx *metaFixture) ([]byte, []byte) {
		return func(fx *metaFixture) ([]byte, []byte) {
			p := akNewPeer(fmt.Sprint("initiator", fx.n))
			fx.n++
			s := p.start(fx.t, fx.blob(1))
			fx.h.peer(p, s)
			env, _, raw := s.sendRaw("first contact")
			return s.sealStart(akEditStart(fx.t, raw, func(m *sealedpb.SessionStart) { edit(fx, m) })), env
		}
	}
	add("4", "start names the last-resort PQ prekey, ciphertext for the one-time one", decrypt, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) {
		m.PqOneTime = false
		m.PqPrekeyId = fx.blob(0).PQPrekey.ID
	}))
	add("4", "start's ML-KEM ciphertext flipped", decrypt, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) { m.KemCiphertext[100] ^= 1 }))
	add("5", "first message body flipped", decrypt, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) { m.Payload[len(m.Payload)-20] ^= 1 }))
	add("5", "first message encrypted header flipped", decrypt, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) { m.Payload[16+10] ^= 1 }))
	add("5", "start's key confirmation flipped", decrypt, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) { m.Confirmation[0] ^= 1 }))
	add("5", "start's base key flipped", nil, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) { m.BaseKey[5] ^= 1 }))
	add("7", "start names a one-time prekey Bob never had", unknownPrekey, handStart(func(fx *metaFixture, m *sealedpb.SessionStart) {
		id := uint32(0xFFFF_FF00)
		m.OneTimePrekeyId = &id
	}))
	add("7", "start names a consumed one-time prekey", unknownPrekey, func(fx *metaFixture) ([]byte, []byte) {
		blob := fx.blob(1)
		first := akNewPeer("first")
		env, _ := first.start(fx.t, blob).send("uses the one-time prekey")
		advAccept(fx.t, fx.bob, env, "uses the one-time prekey")
		second := akNewPeer("second")
		fx.h.peer(first)
		fx.h.peer(second)
		env, _ = second.start(fx.t, blob).send("uses it again")
		return env, nil
	})
	add("8", "second first message with a seen last-resort base key", duplicate, func(fx *metaFixture) ([]byte, []byte) {
		p := akNewPeer("cloned")
		s := p.start(fx.t, fx.blob(0))
		fx.h.peer(p, s)
		state, err := s.r.MarshalBinary()
		if err != nil {
			fx.t.Fatal(err)
		}
		env, _ := s.send("the original")
		advAccept(fx.t, fx.bob, env, "the original")
		clone := *s
		clone.r = new(ratchet.Session)
		if err := clone.r.UnmarshalBinary(state); err != nil {
			fx.t.Fatal(err)
		}
		_, padded, _ := clone.content(sealpost.KindMessage, []byte("the clone's"), nil)
		tag, msg := clone.encrypt(padded)
		return clone.frame(tag, msg), nil
	})
	add("9", "start made for bob.2, re-sealed to Bob with his prekey ids", decrypt, func(fx *metaFixture) ([]byte, []byte) {
		bob2, _ := akPartyAt(fx.t, sealpost.Address{User: "bob", Device: 2}, fx.c)
		own := fx.blob(1)
		p := akNewPeer("misdirected")
		s := p.start(fx.t, akBundles(fx.t, bob2, 1)[0])
		fx.h.peer(p, s)
		_, _, raw := s.sendRaw("for bob.2")
		raw = akEditStart(fx.t, raw, func(m *sealedpb.SessionStart) {
			id := own.OneTimePrekeys[0].ID
			m.SignedPrekeyId, m.PqPrekeyId, m.OneTimePrekeyId = own.SignedPrekey.ID, own.OneTimePQPrekeys[0].ID, &id
		})
		return akSeal(fx.t, own, raw), nil
	})
	add("10", "start keyed by Mallory, presenting Alice's identity", decrypt, func(fx *metaFixture) ([]byte, []byte) {
		m := akNewPeer("mallory")
		m.addr = fx.alice.addr
		s := m.start(fx.t, fx.blob(1))
		fx.h.peer(m, s)
		_, _, raw := s.sendRaw("I am Alice")
		return s.sealStart(akEditStart(fx.t, raw, func(st *sealedpb.SessionStart) { st.InitiatorIdentity = fx.alice.Identity().Bytes() })), nil
	})

	// Kind confusion (42).
	firstContact := func(kind sealpost.Kind, body string) func(fx *metaFixture) ([]byte, []byte) {
		return func(fx *metaFixture) ([]byte, []byte) {
			p := akNewPeer("confused")
			s := p.start(fx.t, fx.blob(1))
			fx.h.peer(p, s)
			_, padded, _ := s.content(kind, []byte(body), nil)
			tag, msg := s.encrypt(padded)
			return s.frame(tag, msg), nil
		}
	}
	onSession := func(kind sealpost.Kind, body string, edit func(*sealedpb.Content)) func(fx *metaFixture) ([]byte, []byte) {
		return func(fx *metaFixture) ([]byte, []byte) {
			_, padded, _ := fx.hand.content(kind, []byte(body), edit)
			tag, msg := fx.hand.encrypt(padded)
			return fx.hand.frame(tag, msg), nil
		}
	}
	add("42", "delivery receipt as a first contact", malformed, firstContact(sealpost.KindDelivered, ""))
	add("42", "read receipt as a first contact", malformed, firstContact(sealpost.KindRead, ""))
	add("42", "delivery receipt with a body", malformed, onSession(sealpost.KindDelivered, "body", nil))
	add("42", "read receipt with a body", malformed, onSession(sealpost.KindRead, "body", nil))
	add("42", "content of unknown kind", malformed, onSession(9, "", nil))
	add("42", "content version 2", []error{sealpost.ErrUnsupportedVersion}, onSession(sealpost.KindMessage, "body", func(c *sealedpb.Content) { c.Version = 2 }))
	return cases
}

// TestNegativeCasesMeta is TESTING.md item 31: every Device-level negative
// case goes through one wrapper, which asserts that the error is one of
// the package's sentinels (and the case's expected one), that the store is
// byte-identical and saw no Apply, that the untouched original (if the case
// has one) is then accepted, and that the device still works both ways
// afterwards. Every error string is checked for key material at the end
// (46).
func TestNegativeCasesMeta(t *testing.T) {
	fx := newMetaFixture(t)
	items := map[string]int{}
	for _, tc := range metaCases() {
		what := "item " + tc.item + ": " + tc.name
		bad, original := tc.build(fx)
		before := dmCapture(fx.bob, fx.fs)
		in, err := fx.bob.Receive(ctx, bad)
		if in != nil {
			t.Fatalf("%s: accepted (%q)", what, in.Body)
		}
		fx.h.fails(t, what, err, tc.want...)
		if !dmTyped(err) {
			t.Fatalf("%s: %v is none of the sentinels", what, err)
		}
		dmUnchanged(t, fx.bob, fx.fs, before, what)
		if original != nil {
			if _, err := fx.bob.Receive(ctx, original); err != nil {
				t.Fatalf("%s: the untouched original afterwards: %v", what, err)
			}
		}
		receive(t, fx.bob, send(t, fx.alice, fx.bob, "still works: "+tc.name))
		receive(t, fx.alice, send(t, fx.bob, fx.alice, "still works: "+tc.name))
		items[tc.item]++
	}
	var summary []string
	for _, k := range slices.Sorted(maps.Keys(items)) {
		summary = append(summary, fmt.Sprintf("%s:%d", k, items[k]))
	}
	t.Logf("%d negative cases, by TESTING.md item: %s", len(metaCases()), strings.Join(summary, " "))
	for _, want := range []string{"4", "5", "6", "7", "8", "9", "10", "15", "19", "20", "22", "23", "41", "42"} {
		if items[want] == 0 {
			t.Errorf("no negative case for TESTING.md item %s", want)
		}
	}
}
