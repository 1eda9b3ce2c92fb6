package sealpost_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

var updateStore = flag.Bool("update-store", false, "rewrite testdata/store/*.golden from a new conversation")

// The stored-state golden vectors (TESTING.md item 37): the stores of two
// devices in the middle of a conversation, as this store layout version
// writes them, with envelopes still in flight. Each released layout keeps
// its file; a build must load every one (or refuse it with
// ErrUnsupportedVersion once it no longer migrates it) and go on.
//
// File format: "# comment" lines, then one "store <name>" line per store
// followed by "<key> <hex value>" lines, then "envelope <to> <hex>" lines
// (in flight, to be received) and "blocked <to> <hex>" lines (from a
// blocked sender: ErrBlocked). Layout 4 and later have the blocked lines.
const storeGolden = "testdata/store/layout6.golden"

type golden struct {
	stores    map[string]map[string][]byte
	envelopes []goldenEnvelope
	blocked   []goldenEnvelope
}

type goldenEnvelope struct {
	to  string
	raw []byte
}

func writeStoreGolden(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	for i := range 40 { // both KEM lanes under way, logs and queues in use
		receive(t, bob, send(t, alice, bob, fmt.Sprint("a", i)))
		if i%3 == 0 {
			receive(t, alice, send(t, bob, alice, fmt.Sprint("b", i)))
		}
	}
	// Bob was restored (Restored, without an actual rollback) and started
	// a new session with Alice: the old session is stale on both sides,
	// and Bob's contents on the new one announce what the old one holds
	// until Alice acknowledges one (the envelope in flight to Alice still
	// carries it).
	if err := bob.Restored(ctx); err != nil {
		t.Fatal(err)
	}
	connect(t, bob, alice)
	receive(t, alice, send(t, bob, alice, "after the restore"))
	// Bob also holds a pending stranger, an unconfirmed identity at
	// Alice's address, and a blocked sender with an envelope in flight.
	carol, mallory, spam := newParty(t, "carol", c), newParty(t, "alice", c), newParty(t, "spam", c)
	for _, p := range []*party{carol, mallory, spam} {
		if err := p.StartSession(ctx, bob.addr, akBundles(t, bob, 0)[0]); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, bob, send(t, carol, bob, "a stranger"))
	receive(t, bob, send(t, mallory, bob, "another alice"))
	if err := bob.Block(ctx, sealpost.Sender{Address: spam.addr}); err != nil {
		t.Fatal(err)
	}
	blocked := []goldenEnvelope{{"bob", send(t, spam, bob, "blocked").Envelope}}
	withFile, err := alice.Send(ctx, bob.addr, []byte("in flight to bob, with a file"), testPointer("plan.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	inflight := []goldenEnvelope{
		{"bob", withFile.Envelope},
		{"alice", send(t, bob, alice, "in flight to alice").Envelope},
	}
	// Everything but the envelopes in flight was posted and reported
	// Sent: the outboxes hold those two.
	for _, p := range []*party{alice, bob, carol, mallory, spam} {
		outs, err := p.Unsent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var posted []*sealpost.Outgoing
		for _, o := range outs {
			if !slices.ContainsFunc(inflight, func(e goldenEnvelope) bool { return bytes.Equal(e.raw, o.Envelope) }) {
				posted = append(posted, o)
			}
		}
		if err := p.Sent(ctx, posted...); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	b.WriteString("# sealpost store layout 6 (device records version 6 in fixed layouts, peer directory, seen blocks, block record, outbox, kept results with attachments and the repeated flag, session records with the stale and announce flags; ratchet state version 3 saved split, ratchet messages version 3):\n")
	b.WriteString("# alice and bob after 43 messages, two envelopes in flight (each in its sender's outbox, the rest reported Sent); bob was marked Restored and started a new session with alice (the old one stale on both sides, bob's announcing); bob holds a pending stranger (carol.1), an unconfirmed identity at alice.1 and blocks spam.1; clock 1800000000.\n")
	for name, p := range map[string]*party{"alice": alice, "bob": bob} {
		fmt.Fprintf(&b, "store %s\n", name)
		snap := p.store.Snapshot()
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range snap {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, "%s %x\n", k, snap[k])
		}
	}
	for _, e := range inflight {
		fmt.Fprintf(&b, "envelope %s %x\n", e.to, e.raw)
	}
	for _, e := range blocked {
		fmt.Fprintf(&b, "blocked %s %x\n", e.to, e.raw)
	}
	if err := os.MkdirAll(filepath.Dir(storeGolden), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storeGolden, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readStoreGolden(t *testing.T, path string) *golden {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &golden{stores: map[string]map[string][]byte{}}
	var cur map[string][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "store" && len(f) == 2:
			cur = map[string][]byte{}
			g.stores[f[1]] = cur
		case (f[0] == "envelope" || f[0] == "blocked") && len(f) == 3:
			v, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatal(err)
			}
			if f[0] == "envelope" {
				g.envelopes = append(g.envelopes, goldenEnvelope{f[1], v})
			} else {
				g.blocked = append(g.blocked, goldenEnvelope{f[1], v})
			}
		case len(f) == 2 && cur != nil:
			v, err := hex.DecodeString(f[1])
			if err != nil {
				t.Fatal(err)
			}
			cur[f[0]] = v
		default:
			t.Fatalf("%s: bad line %q", path, line)
		}
	}
	return g
}

// TestStoreGolden opens both devices from the committed stores, receives
// the envelopes that were in flight, and goes on both ways.
func TestStoreGolden(t *testing.T) {
	if *updateStore {
		writeStoreGolden(t)
	}
	g := readStoreGolden(t, storeGolden)
	c := newClock()
	parties := map[string]*party{}
	for name, snap := range g.stores {
		s := sealpost.NewMemoryStore()
		s.Restore(snap)
		addr := sealpost.Address{User: name, Device: 1}
		d, err := sealpost.Open(ctx, s, addr, sealpost.WithClock(c.now))
		if err != nil {
			t.Fatalf("open %s from the golden store: %v", name, err)
		}
		parties[name] = &party{Device: d, addr: addr, store: s}
	}
	alice, bob := parties["alice"], parties["bob"]
	if alice == nil || bob == nil {
		t.Fatal("golden file lacks a store")
	}
	// The outboxes hand back the envelopes in flight, and only those.
	for _, e := range g.envelopes {
		from := alice
		if e.to == "alice" {
			from = bob
		}
		outs, err := from.Unsent(ctx)
		if err != nil || len(outs) != 1 || !bytes.Equal(outs[0].Envelope, e.raw) {
			t.Fatalf("%s's outbox: %d envelopes, %v; want the one in flight", from.addr, len(outs), err)
		}
	}
	for _, e := range g.envelopes {
		in := receive(t, parties[e.to], &sealpost.Outgoing{Envelope: e.raw})
		if !strings.HasPrefix(string(in.Body), "in flight to "+e.to) {
			t.Fatalf("in-flight envelope to %s: %q", e.to, in.Body)
		}
		if e.to == "bob" && (len(in.Attachments) != 1 || in.Attachments[0].Name != "plan.pdf") {
			t.Fatalf("the in-flight envelope to bob lost its attachment: %v", in.Attachments)
		}
	}
	if len(g.blocked) == 0 {
		t.Fatal("golden file lacks the blocked sender's envelope")
	}
	for _, e := range g.blocked {
		if _, err := parties[e.to].Receive(ctx, e.raw); !errors.Is(err, sealpost.ErrBlocked) {
			t.Fatalf("envelope from the blocked sender: %v, want ErrBlocked", err)
		}
	}
	if ids := bob.UnconfirmedIdentities(alice.addr); len(ids) != 1 || ids[0].Equal(alice.Identity()) {
		t.Fatalf("bob holds %d unconfirmed identities at alice's address", len(ids))
	}
	if _, _, err := bob.PeerIdentity(sealpost.Address{User: "carol", Device: 1}); err != nil {
		t.Fatalf("the pending stranger is gone: %v", err)
	}
	if info := bob.Peers(); !slices.ContainsFunc(info, func(i sealpost.PeerInfo) bool { return i.Address == alice.addr && i.Sessions == 2 }) {
		t.Fatalf("bob's peers %+v: want alice with the stale and the new session", info)
	}
	for i := range 5 {
		if in := receive(t, bob, send(t, alice, bob, fmt.Sprint("after ", i))); string(in.Body) != fmt.Sprint("after ", i) {
			t.Fatal("wrong body")
		}
		receive(t, alice, send(t, bob, alice, "reply"))
	}
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("alice has findings after the golden conversation: %v", fs)
	}
	// Bob's one finding: another identity claims Alice's address.
	if fs := bob.Findings(alice.addr); len(fs) != 1 || fs[0].Kind != transcript.IdentityChanged {
		t.Fatalf("bob's findings after the golden conversation: %v", fs)
	}
}

// TestRetiredStoreLayouts: a store written by a layout this build no
// longer reads is refused with ErrUnsupportedVersion when opened, never
// half-read as malformed or as another state: layout 2 (one protobuf
// ratchet record per session, protobuf session and kept records) and
// layout 3 (the peer list in the device record, one record of accepted
// starts per signed prekey, prekeys without expiry, ratchet state version
// 2 speaking ratchet message version 2), layout 4 (no outbox, kept
// results without attachments) and layout 5 (no stale or announce flags,
// kept results without the repeated flag). sealpost has not
// shipped, so nothing migrates them; the files stay so that the refusal is
// tested.
func TestRetiredStoreLayouts(t *testing.T) {
	for _, layout := range []int{2, 3, 4, 5} {
		g := readStoreGolden(t, fmt.Sprintf("testdata/store/layout%d.golden", layout))
		if len(g.stores) != 2 {
			t.Fatalf("layout %d file holds %d stores", layout, len(g.stores))
		}
		for name, snap := range g.stores {
			s := sealpost.NewMemoryStore()
			s.Restore(snap)
			d, err := sealpost.Open(ctx, s, sealpost.Address{User: name, Device: 1}, sealpost.WithClock(newClock().now))
			if !errors.Is(err, sealpost.ErrUnsupportedVersion) || d != nil {
				t.Fatalf("open %s from a layout %d store: %v, want ErrUnsupportedVersion", name, layout, err)
			}
		}
	}
}
