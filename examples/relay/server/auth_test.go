package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/auth"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// mailboxPath is the mailbox's read (GET) and delete (DELETE) path.
func mailboxPath(mbx []byte) string { return "/v1/mailboxes/" + hex.EncodeToString(mbx) }

// signAt signs a mailbox request as the client does, at a chosen time.
func signAt(priv ed25519.PrivateKey, method string, mbx []byte, at time.Time) string {
	return auth.Sign(priv, method, auth.MailboxResource(mbx), nil, at)
}

// TestContactCannotReadMailbox: a contact knows the mailbox id (it is in
// the bundle) but reading, acknowledging (which needs a connection that
// read) and deleting are all refused, nothing leaves the mailbox, and the
// owner then receives every envelope.
func TestContactCannotReadMailbox(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("bob's mailbox")
	owner := tr.own(mbx)
	const n = 5
	sent := map[string]bool{}
	for i := range n {
		env := fakeEnvelope(mbx, byte(i), 32)
		sent[string(env)] = true
		if err := c.Post(ctx, env); err != nil { // posting stays anonymous
			t.Fatal(err)
		}
	}
	contact, contactPriv := keyPair()
	now := time.Now()
	for _, tc := range []struct {
		name, method, sig string
		want              int
	}{
		{"read unsigned", http.MethodGet, "", http.StatusUnauthorized},
		{"read signed by the contact", http.MethodGet, signAt(contactPriv, http.MethodGet, mbx, now), http.StatusForbidden},
		{"delete unsigned", http.MethodDelete, "", http.StatusUnauthorized},
		{"delete signed by the contact", http.MethodDelete, signAt(contactPriv, http.MethodDelete, mbx, now), http.StatusForbidden},
		{"delete with the owner's signature of a read", http.MethodDelete, "", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := tc.sig
			if tc.name == "delete with the owner's signature of a read" {
				sig = auth.Sign(ownerPriv(t, owner), http.MethodGet, auth.MailboxResource(mbx), nil, now)
			}
			code, msg := signedRequest(t, tr, tc.method, mailboxPath(mbx), nil, sig, "")
			if code != tc.want || msg == "" {
				t.Errorf("%s: %d %q, want %d and a message", tc.name, code, msg, tc.want)
			}
		})
	}
	// Through the client: the WebSocket upgrade is refused, so the contact
	// never gets a delivery id to acknowledge; re-registering is 409.
	if sub, err := c.Subscribe(ctx, mbx, contact); !client.IsStatus(err, http.StatusForbidden) {
		if sub != nil {
			sub.Close()
		}
		t.Fatalf("contact's Subscribe: %v, want 403", err)
	}
	wantStatus(t, c.DeleteMailbox(ctx, mbx, contact), http.StatusForbidden)
	wantStatus(t, c.RegisterMailbox(ctx, mbx, contact), http.StatusConflict)
	if p := tr.pending(mbx); p != n {
		t.Fatalf("pending %d after the contact's attempts, want %d", p, n)
	}

	// The owner registers again (same key: fine) and receives everything.
	if err := c.RegisterMailbox(ctx, mbx, owner); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range n {
		d, ok := next(t, sub, 10*time.Second)
		if !ok || !sent[string(d.Envelope)] {
			t.Fatalf("delivery %d: %v, %x", i, ok, d.Envelope)
		}
		delete(sent, string(d.Envelope))
		if err := sub.Ack(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.pending(mbx) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := tr.pending(mbx); p != 0 {
		t.Fatalf("pending %d after the owner's acks", p)
	}
	// And the owner may delete what arrives later.
	if err := c.Post(ctx, fakeEnvelope(mbx, 99, 32)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMailbox(ctx, mbx, owner); err != nil {
		t.Fatal(err)
	}
	if p := tr.pending(mbx); p != 0 {
		t.Fatalf("pending %d after the owner's delete", p)
	}
}

// ownerPriv turns a client key back into a crypto/ed25519 key, for
// requests the test signs itself.
func ownerPriv(t *testing.T, k *client.Key) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(k.Bytes())
}

// TestSignedRequestRefusals: every way a mailbox read's Sealpost-Auth can
// be wrong, and its answer. None reaches the mailbox.
func TestSignedRequestRefusals(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1})
	mbx := []byte("refusals")
	owner := tr.own(mbx)
	priv := ownerPriv(t, owner)
	_, other := keyPair()
	now := time.Now()
	good := signAt(priv, http.MethodGet, mbx, now)
	f := strings.Fields(good)
	cut := func(s string, n int) string { return s[:len(s)-n] }
	for _, tc := range []struct {
		name string
		sig  string
		want int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"garbage", "garbage", http.StatusBadRequest},
		{"wrong version", "v2 " + strings.Join(f[1:], " "), http.StatusBadRequest},
		{"three fields", strings.Join(f[:3], " "), http.StatusBadRequest},
		{"double space", strings.Join(f, "  "), http.StatusBadRequest},
		{"signed timestamp", "v1 +" + f[1] + " " + f[2] + " " + f[3], http.StatusBadRequest},
		{"timestamp not a number", "v1 12x4 " + f[2] + " " + f[3], http.StatusBadRequest},
		{"timestamp too long", "v1 " + strings.Repeat("9", 20) + " " + f[2] + " " + f[3], http.StatusBadRequest},
		{"short signature", "v1 " + f[1] + " " + f[2] + " " + cut(f[3], 2), http.StatusBadRequest},
		{"padded signature", good + "==", http.StatusBadRequest},
		{"signature not base64url", "v1 " + f[1] + " " + f[2] + " " + strings.Repeat("+", len(f[3])), http.StatusBadRequest},
		{"short nonce", "v1 " + f[1] + " " + cut(f[2], 1) + " " + f[3], http.StatusBadRequest},
		{"very long", good + strings.Repeat("A", 4000), http.StatusBadRequest},
		{"stale", signAt(priv, http.MethodGet, mbx, now.Add(-auth.Window-5*time.Second)), http.StatusUnauthorized},
		{"from the future", signAt(priv, http.MethodGet, mbx, now.Add(auth.Window+5*time.Second)), http.StatusUnauthorized},
		{"another key", signAt(other, http.MethodGet, mbx, now), http.StatusForbidden},
		{"another mailbox", signAt(priv, http.MethodGet, []byte("refusals2"), now), http.StatusForbidden},
		{"another method", signAt(priv, http.MethodDelete, mbx, now), http.StatusForbidden},
		{"a body that was not sent", auth.Sign(priv, http.MethodGet, auth.MailboxResource(mbx), []byte("x"), now), http.StatusForbidden},
		{"tampered timestamp", "v1 " + f[1][:len(f[1])-1] + string('0'+(f[1][len(f[1])-1]-'0'+1)%10) + " " + f[2] + " " + f[3], http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := signedRequest(t, tr, http.MethodGet, mailboxPath(mbx), nil, tc.sig, "")
			if code != tc.want || msg == "" {
				t.Errorf("%d %q, want %d and a message", code, msg, tc.want)
			}
		})
	}
	// Two Sealpost-Auth headers are malformed too.
	req, _ := http.NewRequest(http.MethodGet, tr.url()+mailboxPath(mbx), nil)
	req.Header.Add(auth.Header, good)
	req.Header.Add(auth.Header, good)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two headers: %d", resp.StatusCode)
	}
	// An unregistered mailbox is 404.
	code, _ := signedRequest(t, tr, http.MethodGet, mailboxPath([]byte("nobody's")), nil, signAt(priv, http.MethodGet, []byte("nobody's"), now), "")
	if code != http.StatusNotFound {
		t.Errorf("unregistered mailbox: %d, want 404", code)
	}

	// A replay: the first use of a good signature passes the check (this
	// plain GET is then refused by the WebSocket upgrade), the second is
	// refused as a replay, by this relay and after a restart.
	if code, _ := signedRequest(t, tr, http.MethodGet, mailboxPath(mbx), nil, good, ""); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("first use of a good signature: %d", code)
	}
	code, msg := signedRequest(t, tr, http.MethodGet, mailboxPath(mbx), nil, good, "")
	if code != http.StatusUnauthorized || !strings.Contains(msg, "replay") {
		t.Errorf("replay: %d %q, want 401 replayed", code, msg)
	}
	tr.restart()
	if code, _ := signedRequest(t, tr, http.MethodGet, mailboxPath(mbx), nil, good, ""); code != http.StatusUnauthorized {
		t.Errorf("replay after a restart: %d, want 401", code)
	}
	// A registration signed by a key other than the one in the body.
	body := []byte(owner.Public())
	sig := auth.Sign(other, http.MethodPut, auth.MailboxResource([]byte("new")), body, now)
	if code, _ := signedRequest(t, tr, http.MethodPut, mailboxPath([]byte("new"))+"/owner", body, sig, ""); code != http.StatusUnauthorized {
		t.Errorf("registration without proof of the key: %d, want 401", code)
	}
	if code, _ := signedRequest(t, tr, http.MethodPut, mailboxPath([]byte("new"))+"/owner", []byte("short"), sig, ""); code != http.StatusBadRequest {
		t.Errorf("registration of a 5-byte key: %d, want 400", code)
	}
}

// TestBundleOwnership: the first upload's key owns the device's bundle; a
// stranger's upload is 403 and changes nothing; each one-time blob is
// handed out once.
func TestBundleOwnership(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	owner, ownerKey := keyPair()
	stranger, _ := keyPair()
	if err := c.PutBundle(ctx, owner, "bob", 1, [][]byte{[]byte("ot-1"), []byte("ot-2")}, []byte("lr")); err != nil {
		t.Fatal(err)
	}
	err := c.PutBundle(ctx, stranger, "bob", 1, [][]byte{[]byte("evil-ot")}, []byte("evil-lr"))
	wantStatus(t, err, http.StatusForbidden)
	if se := err.(*client.StatusError); !strings.Contains(se.Message, "another upload key") {
		t.Errorf("403 says %q", se.Message)
	}
	wantStatus(t, c.AddBundle(ctx, stranger, "bob", 1, [][]byte{[]byte("evil-ot")}, nil), http.StatusForbidden)
	// The stranger may own another device's bundle, and the owner's key
	// does not give it that one.
	if err := c.PutBundle(ctx, stranger, "bob", 2, nil, []byte("other-lr")); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, c.PutBundle(ctx, owner, "bob", 2, nil, []byte("x")), http.StatusForbidden)

	path := "/v1/bundles/bob/1"
	body := []byte(`{"last_resort":"ZXZpbA=="}`)
	now := time.Now()
	res := auth.BundleResource("bob", 1)
	pub := auth.EncodeKey(owner.Public())
	good := auth.Sign(ownerKey, http.MethodPost, res, body, now)
	for _, tc := range []struct {
		name, sig, key string
		body           []byte
		want           int
	}{
		{"unsigned", "", pub, body, http.StatusUnauthorized},
		{"no key header", good, "", body, http.StatusBadRequest},
		{"malformed key header", good, pub[:40], body, http.StatusBadRequest},
		{"malformed signature", good[:len(good)-3], pub, body, http.StatusBadRequest},
		{"key not the signer", good, auth.EncodeKey(stranger.Public()), body, http.StatusUnauthorized},
		{"another body", good, pub, []byte(`{"last_resort":"ZXZpbDI="}`), http.StatusUnauthorized},
		{"another device", auth.Sign(ownerKey, http.MethodPost, auth.BundleResource("bob", 3), body, now), pub, body, http.StatusUnauthorized},
		{"another method", auth.Sign(ownerKey, http.MethodPut, res, body, now), pub, body, http.StatusUnauthorized},
		{"stale", auth.Sign(ownerKey, http.MethodPost, res, body, now.Add(-3*time.Minute)), pub, body, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := signedRequest(t, tr, http.MethodPost, path, tc.body, tc.sig, tc.key)
			if code != tc.want || msg == "" {
				t.Errorf("%d %q, want %d and a message", code, msg, tc.want)
			}
		})
	}
	// The good request is accepted once; its replay is refused.
	if code, msg := signedRequest(t, tr, http.MethodPost, path, body, good, pub); code != http.StatusNoContent {
		t.Fatalf("owner's signed upload: %d %q", code, msg)
	}
	if code, msg := signedRequest(t, tr, http.MethodPost, path, body, good, pub); code != http.StatusUnauthorized || !strings.Contains(msg, "replay") {
		t.Errorf("replayed upload: %d %q", code, msg)
	}

	// What bob/1 holds is the owner's only: each one-time blob once, then
	// the last resort (replaced by the signed POST above).
	for _, want := range []struct {
		blob    string
		oneTime bool
	}{{"ot-1", true}, {"ot-2", true}, {"evil", false}, {"evil", false}} {
		blob, oneTime, err := c.FetchBundle(ctx, "bob", 1)
		if err != nil || string(blob) != want.blob || oneTime != want.oneTime {
			t.Fatalf("fetch: %q, one-time %v, %v; want %q, %v", blob, oneTime, err, want.blob, want.oneTime)
		}
	}
	// The owner replaces the bundle.
	if err := c.PutBundle(ctx, owner, "bob", 1, [][]byte{[]byte("ot-3")}, []byte("lr-2")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ot-3", "lr-2", "lr-2"} {
		if blob, _, err := c.FetchBundle(ctx, "bob", 1); err != nil || string(blob) != want {
			t.Fatalf("fetch after the owner's PUT: %q, %v; want %q", blob, err, want)
		}
	}
}

// TestOwnershipSurvivesRestart: mailbox and bundle owners are kept on NATS
// (file storage), so after a restart a stranger is still refused and the
// owner still reads.
func TestOwnershipSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("restart")
	owner := tr.own(mbx)
	upload, stranger := mustKey(), mustKey()
	if err := c.PutBundle(ctx, upload, "bob", 1, nil, []byte("lr")); err != nil {
		t.Fatal(err)
	}
	env := fakeEnvelope(mbx, 1, 16)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	tr.restart()
	c = tr.client()
	wantStatus(t, c.RegisterMailbox(ctx, mbx, stranger), http.StatusConflict)
	if _, err := c.Subscribe(ctx, mbx, stranger); !client.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("stranger's Subscribe after a restart: %v", err)
	}
	wantStatus(t, c.PutBundle(ctx, stranger, "bob", 1, nil, []byte("evil")), http.StatusForbidden)
	if err := c.PutBundle(ctx, upload, "bob", 1, nil, []byte("lr-2")); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if d, ok := next(t, sub, 10*time.Second); !ok || string(d.Envelope) != string(env) {
		t.Fatalf("owner after a restart: %v %x", ok, d.Envelope)
	}
}
