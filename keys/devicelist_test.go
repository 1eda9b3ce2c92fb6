package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/kdf"
	"github.com/sealpost/sealpost/internal/testkit"
)

// listClock is the time every list fixture is issued at; the lists are
// valid for 30 days from it.
var listClock = time.Unix(1_800_000_000, 0)

func listNow() time.Time { return listClock.Add(time.Hour) }

// listFixture is an account key and devices made from fixed seeds, so that
// the golden vectors are reproducible.
type listFixture struct {
	account *AccountKey
	devices []ListedDevice
}

func newListFixture(t testing.TB, n int) *listFixture {
	t.Helper()
	seed := bytes.Repeat([]byte{0xa1}, AccountKeySize)
	registerSecret("account key seed", seed)
	k, err := NewAccountKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	fx := &listFixture{account: k}
	for i := range n {
		id, err := NewIdentityFromSeed(bytes.Repeat([]byte{byte(0x10 + i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		fx.devices = append(fx.devices, ListedDevice{ID: uint32(i + 1), Identity: id.Public(), Name: fmt.Sprintf("device %d", i+1)})
	}
	return fx
}

func (fx *listFixture) list(t testing.TB, prev *DeviceList, devices []ListedDevice) *DeviceList {
	t.Helper()
	l, err := NewDeviceList(fx.account, prev, listClock, listClock.Add(30*24*time.Hour), devices)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// signedRaw re-signs an edited encoding's body, so that a test reaches the
// check after the signature.
func (fx *listFixture) signedRaw(body []byte) []byte {
	return append(bytes.Clone(body), fx.account.sign(kdf.LabelSigDeviceList, body)...)
}

func parseList(raw []byte) (*DeviceList, error) {
	return ParseDeviceList(raw, WithClock(listNow))
}

func TestDeviceListRoundTrip(t *testing.T) {
	fx := newListFixture(t, 3)
	l := fx.list(t, nil, fx.devices)
	got, err := parseList(l.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Account.Equal(fx.account.Public()) || got.Version != 1 || got.Prev != ([32]byte{}) || len(got.Devices) != 3 ||
		!got.Issued.Equal(listClock) || got.Hash() != l.Hash() || !bytes.Equal(got.Bytes(), l.Bytes()) {
		t.Fatalf("parsed %+v", got)
	}
	for i, d := range got.Devices {
		if d.ID != fx.devices[i].ID || d.Name != fx.devices[i].Name || !d.Identity.Equal(fx.devices[i].Identity) {
			t.Fatalf("device %d: %+v", i, d)
		}
	}
	if d, ok := got.Device(2); !ok || d.Name != "device 2" {
		t.Fatal("Device(2)")
	}
	if _, ok := got.Device(9); ok {
		t.Fatal("Device(9) of a list without it")
	}
	next := fx.list(t, got, fx.devices[:2])
	if next.Version != 2 || next.Prev != l.Hash() {
		t.Fatalf("the next list: version %d, prev %x", next.Version, next.Prev)
	}
	if err := next.Follows(got); err != nil {
		t.Fatal(err)
	}
	if len(l.Bytes()) != l.size() {
		t.Fatal("size disagrees with the encoding")
	}
}

func TestNewDeviceListRefuses(t *testing.T) {
	fx := newListFixture(t, MaxDevices+1)
	other := GenerateAccountKey()
	otherList, err := NewDeviceList(other, nil, listClock, listClock.Add(time.Hour), fx.devices[:1])
	if err != nil {
		t.Fatal(err)
	}
	dup := slices.Clone(fx.devices[:2])
	dup[1].ID = dup[0].ID
	sameID := slices.Clone(fx.devices[:2])
	sameID[1].Identity = sameID[0].Identity
	named := func(name string) []ListedDevice {
		d := slices.Clone(fx.devices[:1])
		d[0].Name = name
		return d
	}
	tests := []struct {
		name    string
		prev    *DeviceList
		from    time.Time
		to      time.Time
		devices []ListedDevice
		want    error
	}{
		{"no device", nil, listClock, listClock.Add(time.Hour), nil, ErrMalformed},
		{"nine devices", nil, listClock, listClock.Add(time.Hour), fx.devices, ErrTooLarge},
		{"a device id twice", nil, listClock, listClock.Add(time.Hour), dup, ErrMalformed},
		{"an identity twice", nil, listClock, listClock.Add(time.Hour), sameID, ErrMalformed},
		{"an empty name", nil, listClock, listClock.Add(time.Hour), named(""), ErrMalformed},
		{"a name of 65 bytes", nil, listClock, listClock.Add(time.Hour), named(strings.Repeat("a", 65)), ErrMalformed},
		{"a right-to-left override", nil, listClock, listClock.Add(time.Hour), named("phone\u202egpj.exe"), ErrMalformed},
		{"a zero-width space", nil, listClock, listClock.Add(time.Hour), named("pho\u200bne"), ErrMalformed},
		{"a newline", nil, listClock, listClock.Add(time.Hour), named("phone\nlaptop"), ErrMalformed},
		{"invalid UTF-8", nil, listClock, listClock.Add(time.Hour), named("\xff"), ErrMalformed},
		{"expiry before issue", nil, listClock, listClock.Add(-time.Second), fx.devices[:1], ErrMalformed},
		{"expiry at issue", nil, listClock, listClock, fx.devices[:1], ErrMalformed},
		{"a previous list of another account", otherList, listClock, listClock.Add(time.Hour), fx.devices[:1], ErrMalformed},
		{"no identity", nil, listClock, listClock.Add(time.Hour), []ListedDevice{{ID: 1, Name: "x"}}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewDeviceList(fx.account, tc.prev, tc.from, tc.to, tc.devices)
			if l != nil {
				t.Fatal("a list with the error")
			}
			wantErr(t, err, tc.want)
		})
	}
	// Eight devices and a name of 64 bytes with spaces and non-ASCII letters
	// are fine.
	eight := slices.Clone(fx.devices[:MaxDevices])
	eight[0].Name = strings.Repeat("é", 32)
	eight[1].Name = "Anna's laptop"
	if _, err := NewDeviceList(fx.account, nil, listClock, listClock.Add(time.Hour), eight); err != nil {
		t.Fatal(err)
	}
}

// listOffsets are the offsets of a one-device list's fields.
const (
	offAccount = 1
	offVersion = offAccount + PublicAccountKeySize
	offPrev    = offVersion + 8
	offIssued  = offPrev + 32
	offExpires = offIssued + 8
	offCount   = offExpires + 8
	offDevices = offCount + 1
)

func TestParseDeviceListRefuses(t *testing.T) {
	fx := newListFixture(t, 2)
	l := fx.list(t, nil, fx.devices)
	raw := l.Bytes()
	body := raw[:len(raw)-ed25519.SignatureSize]
	resigned := func(edit func(b []byte) []byte) []byte { return fx.signedRaw(edit(bytes.Clone(body))) }
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"format 0", testkit.With(raw, 0, 0), ErrUnsupportedVersion},
		{"format 2", testkit.With(raw, 0, 2), ErrUnsupportedVersion},
		{"over the size bound", make([]byte, MaxDeviceListSize+1), ErrTooLarge},
		{"one byte short", raw[:len(raw)-1], ErrMalformed},
		{"a byte too many", append(bytes.Clone(raw), 0), ErrMalformed},
		{"only the fixed part", raw[:deviceListFixed-1], ErrMalformed},
		{"account key of type X25519", resigned(func(b []byte) []byte { b[offAccount] = typeX25519; return b }), ErrMalformed},
		{"account key of small order", testkit.With(raw, offAccount+1, make([]byte, 32)...), ErrMalformed},
		{"signed by another account key", testkit.With(raw, offAccount+1, GenerateAccountKey().Public().Bytes()[1:]...), ErrBadSignature},
		{"version 0", resigned(func(b []byte) []byte { return testkit.With(b, offVersion, testkit.BE64(0)...) }), ErrMalformed},
		{"version 1 with a previous hash", resigned(func(b []byte) []byte { b[offPrev] = 1; return b }), ErrMalformed},
		{"version 2 without one", resigned(func(b []byte) []byte { return testkit.With(b, offVersion, testkit.BE64(2)...) }), ErrMalformed},
		{"issued at 0", resigned(func(b []byte) []byte { return testkit.With(b, offIssued, testkit.BE64(0)...) }), ErrMalformed},
		{"expires past year 9999", resigned(func(b []byte) []byte { return testkit.With(b, offExpires, testkit.BE64(maxExpiry+1)...) }), ErrMalformed},
		{"no devices", resigned(func(b []byte) []byte { b[offCount] = 0; return b[:offDevices] }), ErrMalformed},
		{"nine devices claimed", resigned(func(b []byte) []byte { b[offCount] = 9; return b }), ErrTooLarge},
		{"a device id twice", resigned(func(b []byte) []byte {
			second := offDevices + 4 + PublicIdentitySize + 1 + len(fx.devices[0].Name)
			return testkit.With(b, second, testkit.BE32(fx.devices[0].ID)...)
		}), ErrMalformed},
		{"a bad identity", resigned(func(b []byte) []byte { b[offDevices+4+70] ^= 1; return b }), ErrBadSignature},
		{"a name past the input", resigned(func(b []byte) []byte { b[offDevices+4+PublicIdentitySize] = 200; return b }), ErrMalformed},
		{"a name with a control character", resigned(func(b []byte) []byte { b[offDevices+4+PublicIdentitySize+1] = '\t'; return b }), ErrMalformed},
		{"expired", fx.list(t, nil, fx.devices).Bytes(), nil}, // replaced below
	}
	expired, err := NewDeviceList(fx.account, nil, listClock.Add(-48*time.Hour), listClock, fx.devices)
	if err != nil {
		t.Fatal(err)
	}
	tests[len(tests)-1] = struct {
		name string
		raw  []byte
		want error
	}{"expired", expired.Bytes(), ErrExpired}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseList(tc.raw)
			if got != nil {
				t.Fatal("a list with the error")
			}
			wantErr(t, err, tc.want)
		})
	}
	// Every single bit flip is an error, never another valid list.
	for i := range len(raw) * 8 {
		flipped := bytes.Clone(raw)
		flipped[i/8] ^= 1 << (i % 8)
		if got, err := parseList(flipped); err == nil || got != nil {
			t.Fatalf("bit %d flipped: parsed", i)
		} else {
			wantTyped(t, err)
		}
	}
	// A signature made malleable (S + L) is refused.
	sig := raw[len(raw)-ed25519.SignatureSize:]
	s := append([]byte(nil), sig[32:]...)
	if addL(s) {
		mall := append(bytes.Clone(body), sig[:32]...)
		if _, err := parseList(append(mall, s...)); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("S+L: %v", err)
		}
	}
}

// addL adds the group order to a little-endian scalar in place; it reports
// false if the sum does not fit in 32 bytes.
func addL(s []byte) bool {
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	carry := 0
	for i := range s {
		v := int(s[i]) + int(l[i]) + carry
		s[i], carry = byte(v), v>>8
	}
	return carry == 0 && s[31]&0xe0 == 0
}

func TestDeviceListFollows(t *testing.T) {
	fx := newListFixture(t, 3)
	v1 := fx.list(t, nil, fx.devices[:1])
	v2 := fx.list(t, v1, fx.devices[:2])
	v3 := fx.list(t, v2, fx.devices)
	v2b := fx.list(t, v1, []ListedDevice{fx.devices[0], fx.devices[2]}) // another version 2
	other := GenerateAccountKey()
	foreign, err := NewDeviceList(other, nil, listClock, listClock.Add(time.Hour), fx.devices[:1])
	if err != nil {
		t.Fatal(err)
	}
	// A version 3 that names a list the pinned version 2 is not.
	unchained := func() *DeviceList {
		body := v3.Bytes()[:len(v3.Bytes())-ed25519.SignatureSize]
		body = testkit.With(body, offPrev, bytes.Repeat([]byte{7}, 32)...)
		l, err := parseList(fx.signedRaw(body))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}()
	tests := []struct {
		name         string
		list, pinned *DeviceList
		want         error
	}{
		{"first use", v1, nil, nil},
		{"the same list", v2, v2, nil},
		{"the next", v2, v1, nil},
		{"two ahead", v3, v1, nil},
		{"older", v1, v2, ErrRollback},
		{"another list of the same version", v2b, v2, ErrFork},
		{"the next without the pinned hash", unchained, v2, ErrBrokenChain},
		{"another account key", foreign, v1, ErrWrongAccount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.list.Follows(tc.pinned)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
	var fork *ForkError
	if err := v2b.Follows(v2); !errors.As(err, &fork) || fork.Pinned != v2 || fork.Other != v2b {
		t.Fatalf("fork evidence: %v", err)
	}
}

func TestAccountKey(t *testing.T) {
	k := GenerateAccountKey()
	again, err := NewAccountKey(k.Bytes())
	if err != nil || !again.Public().Equal(k.Public()) {
		t.Fatalf("rebuilt from its seed: %v", err)
	}
	if _, err := NewAccountKey(make([]byte, 31)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a short seed: %v", err)
	}
	p, err := ParsePublicAccountKey(k.Public().Bytes())
	if err != nil || !p.Equal(k.Public()) || p.Fingerprint() != k.Public().Fingerprint() {
		t.Fatalf("parse: %v", err)
	}
	if GenerateAccountKey().Public().Equal(k.Public()) {
		t.Fatal("two generated keys are equal")
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%#v", k), fmt.Sprintf("%x", k), k.String()} {
		if strings.Contains(s, hex.EncodeToString(k.Bytes())) || !strings.Contains(s, "fingerprint") {
			t.Fatalf("formatting an account key prints %q", s)
		}
	}
	// Small-order points (in either sign) and non-canonical encodings are
	// refused: under a small-order key one signature verifies every list.
	bad := [][]byte{make([]byte, 32), {1}}
	for _, y := range smallOrderY {
		bad = append(bad, y[:])
		signed := y
		signed[31] |= 0x80
		bad = append(bad, signed[:])
	}
	pEnc := bytes.Repeat([]byte{0xff}, 32)
	pEnc[0], pEnc[31] = 0xed, 0x7f
	bad = append(bad, pEnc)
	for i, b := range bad {
		enc := append([]byte{typeEd25519}, append(b, make([]byte, 32-len(b))...)...)
		if _, err := ParsePublicAccountKey(enc); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad key %d (%x): %v", i, enc, err)
		}
	}
	for _, enc := range [][]byte{nil, k.Public().Bytes()[:32], append([]byte{typeX25519}, k.Public().Bytes()[1:]...)} {
		if _, err := ParsePublicAccountKey(enc); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", enc, err)
		}
	}
}

// The golden vectors of device lists: each file is a testkit vector with
// an expect line (ok or the error) and the encoding.
const deviceListVectorsDir = "testdata/device_list"

func deviceListVectors(t *testing.T) map[string]struct {
	raw    []byte
	expect string
} {
	fx := newListFixture(t, MaxDevices)
	long := slices.Clone(fx.devices)
	for i := range long {
		long[i].Name = strings.Repeat(string(rune('a'+i)), MaxDeviceNameLength)
	}
	v1 := fx.list(t, nil, fx.devices[:1])
	v2 := fx.list(t, v1, fx.devices[:2])
	full := fx.list(t, nil, long)
	body := v1.Bytes()[:len(v1.Bytes())-ed25519.SignatureSize]
	nine := append(bytes.Clone(full.Bytes()[:len(full.Bytes())-ed25519.SignatureSize]), 0, 0, 0, 9)
	nine = append(nine, fx.devices[0].Identity.Bytes()...)
	nine = append(nine, 1, 'x')
	nine[offCount] = 9
	badSig := v1.Bytes()
	badSig[len(badSig)-1] ^= 1
	expired, err := NewDeviceList(fx.account, nil, listClock.Add(-48*time.Hour), listClock, fx.devices[:1])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]struct {
		raw    []byte
		expect string
	}{
		"valid_one_device":    {v1.Bytes(), "ok"},
		"valid_next_version":  {v2.Bytes(), "ok"},
		"valid_eight_devices": {full.Bytes(), "ok"},
		"bad_signature":       {badSig, "ErrBadSignature"},
		"expired":             {expired.Bytes(), "ErrExpired"},
		"too_many_devices":    {fx.signedRaw(nine), "ErrTooLarge"},
		"duplicate_device_id": {fx.signedRaw(testkit.With(bytes.Clone(v2.Bytes()[:len(v2.Bytes())-ed25519.SignatureSize]),
			offDevices+4+PublicIdentitySize+1+len(fx.devices[0].Name), testkit.BE32(1)...)), "ErrMalformed"},
		"format_unsupported": {testkit.With(v1.Bytes(), 0, 2), "ErrUnsupportedVersion"},
		"small_order_account": {fx.signedRaw(testkit.With(bytes.Clone(body), offAccount+1, make([]byte, 32)...)),
			"ErrMalformed"},
	}
	return out
}

func TestDeviceListVectors(t *testing.T) {
	errsByName := map[string]error{"ok": nil, "ErrBadSignature": ErrBadSignature, "ErrExpired": ErrExpired,
		"ErrTooLarge": ErrTooLarge, "ErrMalformed": ErrMalformed, "ErrUnsupportedVersion": ErrUnsupportedVersion}
	for name, v := range deviceListVectors(t) {
		path := filepath.Join(deviceListVectorsDir, name+".bin")
		file := testkit.Vector{Header: []testkit.Field{
			{Key: "comment", Value: "sealpost device list (docs/SPEC.md section 22); account key seed a1 x 32, device identity seeds 10, 11, ... x 32; verify at 1800003600. Regenerate with go test ./keys -run TestDeviceListVectors -update."},
			{Key: "expect", Value: v.expect},
		}, Raw: v.raw}
		if *update {
			if err := os.MkdirAll(deviceListVectorsDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, file.Encode(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create it)", name, err)
		}
		got, err := testkit.ParseVector(data, "comment", "expect")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Raw, v.raw) {
			t.Fatalf("%s: the code now makes other bytes than %s", name, path)
		}
		want, ok := errsByName[got.Get("expect")]
		if !ok {
			t.Fatalf("%s: unknown expect %q", name, got.Get("expect"))
		}
		l, err := parseList(got.Raw)
		if want == nil {
			if err != nil || l == nil {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		wantErr(t, err, want)
	}
}

// FuzzParseDeviceList: arbitrary bytes never panic, every error is typed,
// and a list that parses encodes back to the same bytes.
func FuzzParseDeviceList(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(deviceListVectorsDir, "*.bin"))
	for _, name := range files {
		data, _ := os.ReadFile(name)
		if v, err := testkit.ParseVector(data); err == nil {
			f.Add(v.Raw)
		}
	}
	f.Add([]byte{DeviceListFormat})
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := parseList(raw)
		if err != nil {
			if l != nil || sentinelName(err) == "" {
				t.Fatalf("a list with an error, or an untyped error: %v", err)
			}
			return
		}
		if !bytes.Equal(l.appendBody(nil), raw[:len(raw)-ed25519.SignatureSize]) || !bytes.Equal(l.Bytes(), raw) {
			t.Fatal("a parsed list does not encode back to its bytes")
		}
		if err := l.check(); err != nil {
			t.Fatalf("a parsed list fails its own check: %v", err)
		}
	})
}
