package sealpost_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/statepb"
)

// dmLeakFinder returns a function that reports the name of a secret of
// which some 16-byte window appears in one of the texts, raw, in hex
// (either case), as a Go byte slice, or in Base64 (standard or URL, at any
// alignment), or "" if none does.
func dmLeakFinder(secrets map[string][]byte) func(texts []string) string {
	forms := map[string]string{}
	for name, secret := range secrets {
		for i := 0; i+16 <= len(secret); i++ {
			w := secret[i : i+16]
			for _, f := range []string{string(w), hex.EncodeToString(w), strings.ToUpper(hex.EncodeToString(w)), strings.Trim(fmt.Sprint(w), "[]")} {
				forms[f] = name
			}
			// 18 bytes encode to 24 characters; characters 4..20 depend
			// only on bytes 3..15 of them, whatever came before, so they
			// appear inside any longer encoding aligned like this one.
			if i+18 <= len(secret) {
				for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
					forms[enc.EncodeToString(secret[i : i+18])[4:20]] = name
				}
			}
		}
	}
	return func(texts []string) string {
		for _, text := range texts {
			for f, name := range forms {
				if strings.Contains(text, f) {
					return name
				}
			}
		}
		return ""
	}
}

func dmTotalLen(texts []string) int {
	n := 0
	for _, s := range texts {
		n += len(s)
	}
	return n
}

// TestHygieneFormatting formats a Device, an Incoming and an Outgoing with
// every verb, and collects the error strings of many failing operations;
// none may contain a 16-byte window of any secret in the device's stored
// record (identity seed, prekey and mailbox key seeds), raw, in hex or in
// Base64 (TESTING.md item 46).
func TestHygieneFormatting(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob, fs := newFaultyParty(t, "bob", c)
	connect(t, alice, bob)
	out := send(t, alice, bob, "hello")
	in, err := bob.Receive(ctx, out.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := bob.store.Get(ctx, "device")
	if err != nil {
		t.Fatal(err)
	}
	raw := dmRecordValue(t, "device", stored)
	rec := new(statepb.Device)
	if err := pbstrict.Unmarshal(raw, rec); err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{"identity seed": rec.IdentitySeed}
	for _, list := range [][]*statepb.PrivateKey{rec.SignedPrekeys, rec.PqPrekeys, rec.OneTimePrekeys, rec.MailboxKeys} {
		for _, k := range list {
			secrets[fmt.Sprintf("prekey %d (kind %d) seed", k.Id, k.Kind)] = k.Seed
		}
	}
	verbs := []string{"%v", "%+v", "%#v", "%x", "%X", "%s", "%q"}
	var texts []string
	for _, v := range []any{in, out, *in, *out} {
		for _, verb := range verbs {
			texts = append(texts, fmt.Sprintf(verb, v))
		}
	}
	deviceTexts := map[string]string{}
	for _, verb := range verbs {
		deviceTexts[verb] = fmt.Sprintf(verb, bob.Device)
	}
	// Errors of failing operations on Bob's device.
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err = bob.Receive(ctx, out.Envelope[:len(out.Envelope)-3])
	collect(err)
	flipped := bytes.Clone(out.Envelope)
	flipped[len(flipped)/2] ^= 1
	_, err = bob.Receive(ctx, flipped)
	collect(err)
	collect(bob.Done(ctx, in.ID))
	_, err = bob.Receive(ctx, out.Envelope)
	collect(err)
	collect(bob.Acknowledge(ctx, alice.addr, sealpost.KindRead, sealpost.MessageID{9}))
	_, err = bob.Send(ctx, sealpost.Address{User: "nobody", Device: 1}, nil)
	collect(err)
	_, err = bob.NewBundle(ctx, -1)
	collect(err)
	fs.fail = true
	_, err = bob.Send(ctx, alice.addr, []byte("x"))
	collect(err)
	fs.fail = false
	for _, mutate := range []func(*statepb.Device){
		func(r *statepb.Device) { r.Version = 7 },
		func(r *statepb.Device) { r.IdentitySeed = r.IdentitySeed[:31] },
		func(r *statepb.Device) { r.SignedPrekeys[0].Seed = r.SignedPrekeys[0].Seed[:20] },
		func(r *statepb.Device) { r.MailboxKeys[0].Kind = 99 },
		func(r *statepb.Device) { r.User = "mallory" },
	} {
		r := new(statepb.Device)
		if err := pbstrict.Unmarshal(raw, r); err != nil {
			t.Fatal(err)
		}
		mutate(r)
		b, err := pbstrict.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		s := sealpost.NewMemoryStore()
		m := bob.store.Snapshot()
		m["device"] = dmRecord("device", b)
		s.Restore(m)
		_, err = sealpost.Open(ctx, s, bob.addr)
		collect(err)
	}
	if len(errs) < 10 {
		t.Fatalf("only %d operations failed: %v", len(errs), errs)
	}
	for _, err := range errs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	leak := dmLeakFinder(secrets)
	if name := leak([]string{"planted " + base64.StdEncoding.EncodeToString(rec.IdentitySeed)}); name == "" {
		t.Fatal("the leak finder misses a planted Base64 identity seed")
	}
	if name := leak([]string{fmt.Sprintf("planted %X", rec.IdentitySeed[5:30])}); name == "" {
		t.Fatal("the leak finder misses a planted hex identity seed")
	}
	if name := leak(texts); name != "" {
		t.Fatalf("%s appears in a formatted Incoming, Outgoing or error string", name)
	}
	t.Logf("searched %d strings (%d bytes) for %d secrets", len(texts), dmTotalLen(texts), len(secrets))
	var leaky []string
	for _, verb := range verbs {
		if name := leak([]string{deviceTexts[verb]}); name != "" {
			leaky = append(leaky, verb+": "+name)
		}
	}
	if len(leaky) > 0 {
		t.Fatalf("regression of a fixed bug: formatting a *sealpost.Device prints secrets (%s): fmt's bad-verb path prints the unexported *keys.IdentityPrivateKey field as its raw struct, seed included; device.go gives Device no String/GoString/Format method", strings.Join(leaky, "; "))
	}
}
