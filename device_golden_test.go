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
)

var updateStore = flag.Bool("update-store", false, "rewrite testdata/store/*.golden from a new conversation")

// The stored-state golden vectors (ADVERSARIAL 37): the stores of two
// devices in the middle of a conversation, as this store layout version
// writes them, with envelopes still in flight. Each released layout keeps
// its file; a build must load every one (or refuse it with
// ErrUnsupportedVersion once it no longer migrates it) and go on.
//
// File format: "# comment" lines, then one "store <name>" line per store
// followed by "<key> <hex value>" lines, then "envelope <to> <hex>" lines.
const storeGolden = "testdata/store/layout4.golden"

type golden struct {
	stores    map[string]map[string][]byte
	envelopes []goldenEnvelope
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
	inflight := []goldenEnvelope{
		{"bob", send(t, alice, bob, "in flight to bob").Envelope},
		{"alice", send(t, bob, alice, "in flight to alice").Envelope},
	}
	var b strings.Builder
	b.WriteString("# sealpost store layout 4 (device records version 4 in fixed layouts, ratchet state version 3 saved split, ratchet messages version 3):\n")
	b.WriteString("# alice and bob after 42 messages, two envelopes in flight; clock 1800000000.\n")
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
		case f[0] == "envelope" && len(f) == 3:
			v, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatal(err)
			}
			g.envelopes = append(g.envelopes, goldenEnvelope{f[1], v})
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
	for _, e := range g.envelopes {
		in := receive(t, parties[e.to], &sealpost.Outgoing{Envelope: e.raw})
		if !strings.HasPrefix(string(in.Body), "in flight to "+e.to) {
			t.Fatalf("in-flight envelope to %s: %q", e.to, in.Body)
		}
	}
	for i := range 5 {
		if in := receive(t, bob, send(t, alice, bob, fmt.Sprint("after ", i))); string(in.Body) != fmt.Sprint("after ", i) {
			t.Fatal("wrong body")
		}
		receive(t, alice, send(t, bob, alice, "reply"))
	}
	for _, p := range []*party{alice, bob} {
		if fs := p.Findings(map[*party]*party{alice: bob, bob: alice}[p].addr); len(fs) != 0 {
			t.Fatalf("%s has findings after the golden conversation: %v", p.addr, fs)
		}
	}
}

// TestRetiredStoreLayouts: a store written by a layout this build no
// longer reads (layout 2: one protobuf ratchet record per session,
// protobuf session and kept records; layout 3: ratchet state version 2,
// whose sessions speak ratchet message version 2) is refused with
// ErrUnsupportedVersion when opened, never half-read as malformed or as
// another state. sealpost has not shipped, so nothing migrates them; the
// files stay so that the refusal is tested.
func TestRetiredStoreLayouts(t *testing.T) {
	for _, layout := range []string{"layout2", "layout3"} {
		g := readStoreGolden(t, "testdata/store/"+layout+".golden")
		if len(g.stores) != 2 {
			t.Fatalf("%s file holds %d stores", layout, len(g.stores))
		}
		for name, snap := range g.stores {
			s := sealpost.NewMemoryStore()
			s.Restore(snap)
			d, err := sealpost.Open(ctx, s, sealpost.Address{User: name, Device: 1}, sealpost.WithClock(newClock().now))
			if !errors.Is(err, sealpost.ErrUnsupportedVersion) || d != nil {
				t.Fatalf("open %s from a %s store: %v, want ErrUnsupportedVersion", name, layout, err)
			}
		}
	}
}
