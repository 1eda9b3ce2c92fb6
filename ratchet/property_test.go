package ratchet

import (
	"bytes"
	"fmt"
	"testing"
)

// party is one side of a simulated conversation.
type party struct {
	name     string
	s        *Session
	inbox    []sealed // in flight towards this party, in send order
	received []sealed // delivered, most recent last
	canSend  bool
}

// sim drives two parties through a seeded random schedule of sends,
// deliveries in random order, drops and duplicates (checklist items 13 and 14).
type sim struct {
	t      testing.TB
	rnd    shake
	p      [2]*party
	seq    int
	reload bool // round-trip a random party's state now and then
}

func newSim(t testing.TB, seed string) *sim {
	alice, bob := pairFrom(t, seed)
	return &sim{t: t, rnd: newShake(seed), p: [2]*party{
		{name: "alice", s: alice, canSend: true},
		{name: "bob", s: bob},
	}}
}

// step performs one random action.
func (m *sim) step() {
	from := m.rnd.intn(2)
	to := m.p[1-from]
	switch r := m.rnd.intn(100); {
	case r < 40 && m.p[from].canSend:
		m.seq++
		to.inbox = append(to.inbox, send(m.t, m.p[from].s, fmt.Sprintf("%s %d", m.p[from].name, m.seq)))
	case r < 80 && len(to.inbox) > 0:
		// Deliver: mostly the oldest few, sometimes any (reorder).
		i := m.rnd.intn(min(len(to.inbox), 1+m.rnd.intn(8)))
		msg := to.inbox[i]
		to.inbox = append(to.inbox[:i], to.inbox[i+1:]...)
		recv(m.t, to.s, msg)
		to.received = append(to.received, msg)
		to.canSend = true
	case r < 88 && len(to.inbox) > 0:
		// Drop.
		i := m.rnd.intn(len(to.inbox))
		to.inbox = append(to.inbox[:i], to.inbox[i+1:]...)
	case r < 96 && len(to.received) > 0:
		m.duplicate(to)
	case m.reload:
		m.roundTrip(m.p[from])
	}
}

// duplicate delivers an already delivered message again. Within the replay
// record it must be ErrDuplicate; beyond it, any error, and never plaintext.
func (m *sim) duplicate(to *party) {
	k := len(to.received)
	if m.rnd.intn(4) == 0 {
		msg := to.received[m.rnd.intn(k)]
		mustFail(m.t, to.s, msg.tag, msg.msg, nil)
		return
	}
	msg := to.received[k-1-m.rnd.intn(min(k, ReplayRecord))]
	mustFail(m.t, to.s, msg.tag, msg.msg, ErrDuplicate)
}

// roundTrip replaces a party's session by its saved and reloaded state.
func (m *sim) roundTrip(p *party) {
	b := state(m.t, p.s)
	var r Session
	r.hooks = p.s.hooks
	if err := r.UnmarshalBinary(b); err != nil {
		m.t.Fatal(err)
	}
	if b2 := state(m.t, &r); !bytes.Equal(b, b2) {
		m.t.Fatal("state round trip changed the encoding")
	}
	p.s = &r
}

// TestRandomSchedule is checklist item 13: 2,000 random steps; every message
// delivered decrypts exactly once to what was sent (recv checks), every
// recent duplicate is ErrDuplicate and changes nothing.
func TestRandomSchedule(t *testing.T) {
	for _, seed := range []string{"schedule 1", "schedule 2", "schedule 3"} {
		m := newSim(t, seed)
		for range 2000 {
			m.step()
		}
		// Everything still in flight decrypts, in any order.
		for _, p := range m.p {
			for len(p.inbox) > 0 {
				i := m.rnd.intn(len(p.inbox))
				recv(t, p.s, p.inbox[i])
				p.inbox = append(p.inbox[:i], p.inbox[i+1:]...)
			}
		}
	}
}

// TestStateRoundTripProperty: over random conversations, saving and loading
// any party at any point loses nothing: the encoding is stable and the
// conversation goes on.
func TestStateRoundTripProperty(t *testing.T) {
	m := newSim(t, "round trip")
	m.reload = true
	for range 2000 {
		m.step()
	}
}

// TestReloadedSessionIsIdentical: a reloaded session seals exactly the same
// bytes as the original, so the state holds everything.
func TestReloadedSessionIsIdentical(t *testing.T) {
	m := newSim(t, "identical")
	for range 500 {
		m.step()
	}
	for _, p := range m.p {
		if !p.canSend {
			continue
		}
		var r Session
		if err := r.UnmarshalBinary(state(t, p.s)); err != nil {
			t.Fatal(err)
		}
		a, b := send(t, p.s, "same"), send(t, &r, "same")
		if a.tag != b.tag || !bytes.Equal(a.msg, b.msg) {
			t.Fatal("reloaded session seals differently")
		}
		if !bytes.Equal(state(t, p.s), state(t, &r)) {
			t.Fatal("reloaded session's state differs after a send")
		}
	}
}
