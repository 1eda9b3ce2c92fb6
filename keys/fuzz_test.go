package keys

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// vectorSeeds returns the raw bytes of every vector file in dir, to seed a
// fuzz target.
func vectorSeeds(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, decodeRawVector(tb, e.Name(), data).raw)
	}
	return out
}

// FuzzParseBundle feeds arbitrary bytes to ParseBundle (fuzz target F2
// in TESTING.md). Properties: no panic; on error a nil bundle and a typed
// error; on success a bundle whose signatures verify and whose MarshalBinary
// is a fixed point (marshal, parse, marshal gives the same bytes).
//
// The input itself need not equal the re-marshaled bytes: protobuf is not a
// canonical encoding and ParseBundle accepts other encodings of the same
// values (TestBundleNonCanonicalAccepted). That is safe because signatures
// cover decoded values, never protobuf bytes.
func FuzzParseBundle(f *testing.F) {
	for _, raw := range vectorSeeds(f, bundleVectorsDir) {
		f.Add(raw)
	}
	var file sessionVectorFile
	readJSON(f, sessionVectorsFile, &file)
	for _, c := range file.Cases {
		f.Add([]byte(c.Bundle))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if b != nil {
				t.Fatalf("a bundle with error %v", err)
			}
			if sentinelName(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if err := b.Verify(); err != nil {
			t.Fatalf("a parsed bundle does not verify: %v", err)
		}
		m1, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("a parsed bundle does not marshal: %v", err)
		}
		b2, err := ParseBundle(m1)
		if err != nil {
			t.Fatalf("the re-marshaled bundle does not parse: %v", err)
		}
		m2, err := b2.MarshalBinary()
		if err != nil || !bytes.Equal(m1, m2) {
			t.Fatalf("marshal is not a fixed point: %v", err)
		}
		if b2.Address != b.Address || !b2.Identity.Equal(b.Identity) || len(b2.OneTimePrekeys) != len(b.OneTimePrekeys) {
			t.Fatal("the round trip changed the bundle")
		}
	})
}

// startResponder is one responder the session-start fuzzer answers as:
// its keys, and the genuine starts it accepts with their secrets.
type startResponder struct {
	p       *party
	genuine map[string][]byte // canonical start without payload -> secret
}

// FuzzSessionStart feeds arbitrary bytes to ParseSessionStart and then to
// Respond as each fixed responder of the golden vectors (fuzz target F4 in
// TESTING.md). Properties: no panic; on error nil results, a typed error and
// unchanged prekeys; success only for a start that decodes to a genuine one
// (the payload aside, which the ratchet authenticates), with the recorded
// secret.
func FuzzSessionStart(f *testing.F) {
	var file sessionVectorFile
	readJSON(f, sessionVectorsFile, &file)
	responders := map[string]*startResponder{}
	for _, c := range file.Cases {
		f.Add([]byte(c.SessionStart))
		key := string(c.ResponderIdentity)
		r := responders[key]
		if r == nil {
			r = &startResponder{p: c.Responder.build(f), genuine: map[string][]byte{}}
			responders[key] = r
		}
		// Every case of one responder identity uses the same seeds, so one
		// party per identity holds the union of their prekeys.
		if c.Responder.build(f).spk.id != r.p.spk.id {
			f.Fatalf("case %s: responders with one identity must share keys", c.Name)
		}
		mergePrekeys(r.p, c.Responder.build(f))
		r.genuine[canonicalStart(f, c.SessionStart)] = c.Secret
	}
	for _, raw := range vectorSeeds(f, startVectorsDir) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseSessionStart(data)
		if err != nil {
			if m != nil {
				t.Fatalf("a start with error %v", err)
			}
			if sentinelName(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, r := range responders {
			before := r.p.prekeyBytes()
			keys, err := r.p.respond(m)
			if err != nil {
				if keys != nil || sentinelName(err) == "" {
					t.Fatalf("Respond: %v, %v", keys, err)
				}
				if !equalSnapshots(before, r.p.prekeyBytes()) {
					t.Fatal("a failed Respond changed a prekey")
				}
				continue
			}
			raw, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			secret, ok := r.genuine[canonicalStart(t, raw)]
			if !ok || !bytes.Equal(secret, keys.Secret()) {
				t.Fatalf("Respond accepted a start that is not genuine")
			}
		}
	})
}

// canonicalStart returns the canonical encoding of a start without its
// payload.
func canonicalStart(tb testing.TB, raw []byte) string {
	tb.Helper()
	m, err := ParseSessionStart(raw)
	if err != nil {
		tb.Fatal(err)
	}
	m.Payload = nil
	out, err := m.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// mergePrekeys adds q's one-time prekeys to p, skipping ids p holds.
func mergePrekeys(p, q *party) {
	for _, k := range q.otps {
		if !containsID(p.otps, k.id) {
			p.otps = append(p.otps, k)
		}
	}
	for _, k := range q.otpqs {
		if !containsPQ(p.otpqs, k.id) {
			p.otpqs = append(p.otpqs, k)
		}
	}
}

func containsID(ks []*OneTimePrekey, id uint32) bool {
	for _, k := range ks {
		if k.id == id {
			return true
		}
	}
	return false
}

func containsPQ(ks []*PQPrekey, id uint32) bool {
	for _, k := range ks {
		if k.id == id {
			return true
		}
	}
	return false
}

// FuzzParseLinkCode feeds arbitrary bytes to ParseLinkCode, seeded with the
// link-code golden vectors. Properties: no panic; on error a nil code and
// a typed error; on success a code that encodes back to exactly the input
// (the format has one encoding per code), passes its own check, carries
// the input's last LinkSecretSize bytes as its secret, parses again to the
// same fields, and whose short form is 14 characters, "dddd-dddd-dddd".
func FuzzParseLinkCode(f *testing.F) {
	for _, raw := range linkCodeSeeds(f) {
		f.Add(raw)
	}
	f.Add([]byte{LinkCodeFormat})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseLinkCode(data)
		if err != nil {
			if c != nil {
				t.Fatalf("a code with error %v", err)
			}
			if sentinelName(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), data) {
			t.Fatalf("a parsed code does not encode back to its bytes")
		}
		if err := c.check(); err != nil {
			t.Fatalf("a parsed code fails its own check: %v", err)
		}
		if !bytes.Equal(c.Secret(), data[len(data)-LinkSecretSize:]) {
			t.Fatal("the secret is not the code's last bytes")
		}
		if s := c.Short(); len(s) != 14 || !shortForm.MatchString(s) {
			t.Fatalf("short form %q", s)
		}
		again, err := ParseLinkCode(c.Bytes())
		if err != nil || again.Address != c.Address || !again.Identity.Equal(c.Identity) || again.Name != c.Name || again.Short() != c.Short() {
			t.Fatalf("the re-encoded code parses to another: %v", err)
		}
	})
}
