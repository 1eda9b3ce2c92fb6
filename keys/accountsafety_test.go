package keys

import (
	"bytes"
	"os"
	"regexp"
	"testing"

	"github.com/sealpost/sealpost/internal/kdf"
)

// The golden vectors of account safety numbers (AccountSafetyNumber): two
// account keys from fixed seeds and two user names, with the public keys
// and the number. `go test ./keys -run TestAccountSafetyNumberVectors
// -update` rewrites the file.
const accountSafetyVectorsFile = "testdata/account_safety/account_safety_number.json"

// accountSafetyVector is one account safety number computation.
type accountSafetyVector struct {
	Name              string   `json:"name"`
	LocalUser         string   `json:"local_user"`
	LocalAccountSeed  hexBytes `json:"local_account_seed"`
	RemoteUser        string   `json:"remote_user"`
	RemoteAccountSeed hexBytes `json:"remote_account_seed"`

	LocalAccountKey   hexBytes `json:"local_account_key"`
	RemoteAccountKey  hexBytes `json:"remote_account_key"`
	LocalFingerprint  hexBytes `json:"local_fingerprint"`
	RemoteFingerprint hexBytes `json:"remote_fingerprint"`
	SafetyNumber      string   `json:"safety_number"`
}

type accountSafetyVectorFile struct {
	Comment string                `json:"comment"`
	Cases   []accountSafetyVector `json:"cases"`
}

func accountSafetyVectorInputs() []accountSafetyVector {
	a, b, m := testSeed("alice/account", AccountKeySize), testSeed("bob/account", AccountKeySize), testSeed("mallory/account", AccountKeySize)
	return []accountSafetyVector{
		{Name: "alice_bob", LocalUser: "alice", LocalAccountSeed: a, RemoteUser: "bob", RemoteAccountSeed: b},
		{Name: "bob_alice", LocalUser: "bob", LocalAccountSeed: b, RemoteUser: "alice", RemoteAccountSeed: a},
		{Name: "alice_mallory", LocalUser: "alice", LocalAccountSeed: a, RemoteUser: "bob", RemoteAccountSeed: m},
		{Name: "unicode_users", LocalUser: "alice@example.com", LocalAccountSeed: a, RemoteUser: "Bébé 🐝", RemoteAccountSeed: b},
	}
}

// accountKeyFromSeed rebuilds a fixture account key and registers its seed.
func accountKeyFromSeed(t testing.TB, seed []byte) *AccountKey {
	t.Helper()
	registerSecret("account key seed", seed)
	k, err := NewAccountKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (v *accountSafetyVector) compute(t testing.TB) {
	t.Helper()
	l, r := accountKeyFromSeed(t, v.LocalAccountSeed).Public(), accountKeyFromSeed(t, v.RemoteAccountSeed).Public()
	lf, rf := l.Fingerprint(), r.Fingerprint()
	v.LocalAccountKey, v.RemoteAccountKey = l.Bytes(), r.Bytes()
	v.LocalFingerprint, v.RemoteFingerprint = lf[:], rf[:]
	v.SafetyNumber = AccountSafetyNumber(l, v.LocalUser, r, v.RemoteUser)
}

// TestAccountSafetyNumberVectors checks the committed file against the
// generator and rebuilds every case from its recorded seeds.
func TestAccountSafetyNumberVectors(t *testing.T) {
	cases := accountSafetyVectorInputs()
	for i := range cases {
		cases[i].compute(t)
	}
	want := jsonFile(t, accountSafetyVectorFile{
		Comment: "sealpost keys: account safety numbers (AccountSafetyNumber, 60 digits) from fixed account key seeds. Regenerate with go test ./keys -run TestAccountSafetyNumberVectors -update.",
		Cases:   cases,
	})
	if *update {
		if err := os.MkdirAll("testdata/account_safety", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(accountSafetyVectorsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(accountSafetyVectorsFile)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the code generates now: the derivation or the generator changed (run with -update only if that is intended)", accountSafetyVectorsFile)
	}
	var f accountSafetyVectorFile
	readJSON(t, accountSafetyVectorsFile, &f)
	if len(f.Cases) == 0 {
		t.Fatal("no cases")
	}
	numbers := map[string]string{}
	for _, w := range f.Cases {
		g := w
		g.compute(t)
		if g.SafetyNumber != w.SafetyNumber || !bytes.Equal(g.LocalAccountKey, w.LocalAccountKey) || !bytes.Equal(g.RemoteAccountKey, w.RemoteAccountKey) ||
			!bytes.Equal(g.LocalFingerprint, w.LocalFingerprint) || !bytes.Equal(g.RemoteFingerprint, w.RemoteFingerprint) {
			t.Errorf("%s: got %+v", w.Name, g)
		}
		if !safetyNumberForm.MatchString(w.SafetyNumber) {
			t.Errorf("%s: safety number %q is not 12 groups of 5 digits", w.Name, w.SafetyNumber)
		}
		numbers[w.Name] = w.SafetyNumber
	}
	if numbers["alice_bob"] == "" || numbers["alice_bob"] != numbers["bob_alice"] {
		t.Error("alice_bob and bob_alice must record the same number")
	}
	if numbers["alice_bob"] == numbers["alice_mallory"] {
		t.Error("another remote account key gives the same number")
	}
}

// safetyNumberForm is 12 groups of 5 digits separated by spaces.
var safetyNumberForm = regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`)

// TestAccountSafetyNumberProperties: the number is the same on both sides,
// changes with either account key or user name, binds each user to its
// own key, and is never the device safety number of the same users, even
// for identities whose Ed25519 key is the account key (one seed gives
// both) or for the account keys' bytes hashed under the device label.
func TestAccountSafetyNumberProperties(t *testing.T) {
	seedA, seedB, seedC := testSeed("alice/account", AccountKeySize), testSeed("bob/account", AccountKeySize), testSeed("carol/account", AccountKeySize)
	a, b, c := accountKeyFromSeed(t, seedA).Public(), accountKeyFromSeed(t, seedB).Public(), accountKeyFromSeed(t, seedC).Public()
	n := AccountSafetyNumber(a, "alice", b, "bob")
	if !safetyNumberForm.MatchString(n) {
		t.Fatalf("%q is not 12 groups of 5 digits", n)
	}
	if got := AccountSafetyNumber(b, "bob", a, "alice"); got != n {
		t.Fatalf("not symmetric: %q and %q", n, got)
	}
	if got := AccountSafetyNumber(a, "alice", b, "bob"); got != n {
		t.Fatal("not deterministic")
	}
	for _, tc := range []struct {
		what string
		got  string
	}{
		{"another local key", AccountSafetyNumber(c, "alice", b, "bob")},
		{"another remote key", AccountSafetyNumber(a, "alice", c, "bob")},
		{"another local user", AccountSafetyNumber(a, "alicE", b, "bob")},
		{"another remote user", AccountSafetyNumber(a, "alice", b, "bob2")},
		{"the users swapped between the keys", AccountSafetyNumber(a, "bob", b, "alice")},
		{"the same key on both sides", AccountSafetyNumber(a, "alice", a, "bob")},
	} {
		if tc.got == n {
			t.Errorf("%s: the same number", tc.what)
		}
	}
	// Device identities from the same seeds share the account keys'
	// Ed25519 keys; their safety number must still differ.
	idA, err := NewIdentityFromSeed(seedA)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := NewIdentityFromSeed(seedB)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(idA.Public().Bytes()[1:33], a.Bytes()[1:]) {
		t.Fatal("fixture: the identity's Ed25519 key is not the account key")
	}
	if SafetyNumber(idA.Public(), "alice", idB.Public(), "bob") == n {
		t.Error("the device safety number of the same users and seeds equals the account one")
	}
	// The label alone separates them: the account keys' bytes under the
	// device safety-number label give another number.
	device := joinHalves(iteratedHalf(kdf.LabelSafetyNumber, a.Bytes(), "alice"), iteratedHalf(kdf.LabelSafetyNumber, b.Bytes(), "bob"))
	if device == n {
		t.Error("the account safety number does not depend on its label")
	}
}
