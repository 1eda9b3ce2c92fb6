package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
	"github.com/sealpost/sealpost/keys"
)

// deviceList signs a list of n fresh devices for the account key,
// following prev (nil: the account's first list).
func deviceList(t *testing.T, k *keys.AccountKey, prev *keys.DeviceList, n int) *keys.DeviceList {
	t.Helper()
	var devs []keys.ListedDevice
	for i := range n {
		devs = append(devs, keys.ListedDevice{ID: uint32(i + 1), Identity: keys.GenerateIdentity().Public(), Name: "device"})
	}
	now := time.Now()
	l, err := keys.NewDeviceList(k, prev, now, now.Add(30*24*time.Hour), devs)
	if err != nil {
		t.Fatalf("NewDeviceList: %v", err)
	}
	return l
}

func devicesPath(user string) string { return "/v1/accounts/" + url.PathEscape(user) + "/devices" }

// putList PUTs raw as user's device list and returns the status and the
// error message.
func putList(t *testing.T, tr *testRelay, user string, raw []byte) (int, string) {
	t.Helper()
	return signedRequest(t, tr, http.MethodPut, devicesPath(user), raw, "", "")
}

// wantStored checks that the relay serves want as user's device list.
func wantStored(t *testing.T, c *client.Client, user string, want *keys.DeviceList) {
	t.Helper()
	got, err := c.FetchDeviceList(context.Background(), user)
	if err != nil {
		t.Fatalf("FetchDeviceList: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the relay serves another list (%d bytes) than version %d", len(got), want.Version)
	}
	if _, err := keys.ParseDeviceList(got); err != nil {
		t.Fatalf("the stored list does not parse: %v", err)
	}
}

// TestDeviceLists: the first list pins the account key; only a newer list
// signed by it replaces the stored one; a stranger's list, a replayed or
// equal version and damaged bytes are refused and change nothing; the
// newest list survives a restart.
func TestDeviceLists(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	account, stranger := keys.GenerateAccountKey(), keys.GenerateAccountKey()

	_, err := c.FetchDeviceList(ctx, "carol")
	wantStatus(t, err, http.StatusNotFound)

	v1 := deviceList(t, account, nil, 1)
	if code, msg := putList(t, tr, "carol", v1.Bytes()); code != http.StatusCreated {
		t.Fatalf("first list: %d %q, want 201", code, msg)
	}
	wantStored(t, c, "carol", v1)

	v2 := deviceList(t, account, v1, 2)
	if err := c.PutDeviceList(ctx, "carol", v2.Bytes()); err != nil {
		t.Fatalf("the account's second list: %v", err)
	}
	wantStored(t, c, "carol", v2)

	// A stranger's lists (its own account key): a first one, and one of
	// version 3, above the stored version 2.
	s1 := deviceList(t, stranger, nil, 1)
	s2 := deviceList(t, stranger, s1, 1)
	s3 := deviceList(t, stranger, s2, 1)
	v3 := deviceList(t, account, v2, 3)
	flip := func(raw []byte, i int) []byte {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		return b
	}
	n := len(v3.Bytes())
	for _, tc := range []struct {
		name string
		raw  []byte
		want int
		msg  string
	}{
		{"stranger's first list", s1.Bytes(), http.StatusForbidden, "another account key"},
		{"stranger's newer list", s3.Bytes(), http.StatusForbidden, "another account key"},
		{"replayed older list", v1.Bytes(), http.StatusConflict, "not newer"},
		{"the stored list again", v2.Bytes(), http.StatusConflict, "not newer"},
		{"format byte flipped", flip(v3.Bytes(), 0), http.StatusBadRequest, "signed"},
		{"key type flipped", flip(v3.Bytes(), 1), http.StatusBadRequest, "signed"},
		{"account key flipped", flip(v3.Bytes(), 10), http.StatusBadRequest, "signed"},
		{"version flipped", flip(v3.Bytes(), 2+32+7), http.StatusBadRequest, "signed"},
		{"a device flipped", flip(v3.Bytes(), n/2), http.StatusBadRequest, "signed"},
		{"signature flipped", flip(v3.Bytes(), n-1), http.StatusBadRequest, "signed"},
		{"truncated", v3.Bytes()[:n-1], http.StatusBadRequest, "signed"},
		{"a byte appended", append(v3.Bytes(), 0), http.StatusBadRequest, "signed"},
		{"empty", nil, http.StatusBadRequest, "signed"},
		{"over 2048 bytes", make([]byte, server.MaxDeviceListSize+1), http.StatusRequestEntityTooLarge, "2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := putList(t, tr, "carol", tc.raw)
			if code != tc.want || !strings.Contains(msg, tc.msg) {
				t.Errorf("%d %q, want %d and a message with %q", code, msg, tc.want, tc.msg)
			}
			wantStored(t, c, "carol", v2)
		})
	}
	wantStatus(t, c.PutDeviceList(ctx, "carol", s3.Bytes()), http.StatusForbidden)
	wantStatus(t, c.PutDeviceList(ctx, "carol", v1.Bytes()), http.StatusConflict)
	wantStatus(t, c.PutDeviceList(ctx, "carol", flip(v3.Bytes(), n-1)), http.StatusBadRequest)

	// The stranger's key is free to pin another account; carol's key does
	// not reach it.
	if code, msg := putList(t, tr, "mallory", s1.Bytes()); code != http.StatusCreated {
		t.Fatalf("stranger's own account: %d %q", code, msg)
	}
	wantStatus(t, c.PutDeviceList(ctx, "mallory", v3.Bytes()), http.StatusForbidden)

	// A version more than one ahead is accepted on the signature (the
	// relay keeps only the newest, so the ones between may never have
	// reached it).
	v4 := deviceList(t, account, v3, 1)
	if code, msg := putList(t, tr, "carol", v4.Bytes()); code != http.StatusNoContent {
		t.Fatalf("version 4 after 2: %d %q, want 204", code, msg)
	}
	wantStored(t, c, "carol", v4)
	wantStatus(t, c.PutDeviceList(ctx, "carol", v3.Bytes()), http.StatusConflict)

	tr.restart()
	wantStored(t, c, "carol", v4)
	wantStored(t, c, "mallory", s1)
	wantStatus(t, c.PutDeviceList(ctx, "carol", s3.Bytes()), http.StatusForbidden)
	v5 := deviceList(t, account, v4, 8)
	if err := c.PutDeviceList(ctx, "carol", v5.Bytes()); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	wantStored(t, c, "carol", v5)

	long := strings.Repeat("u", 257)
	if code, _ := putList(t, tr, long, v1.Bytes()); code != http.StatusBadRequest {
		t.Errorf("a user of 257 bytes: %d, want 400", code)
	}
	if code, _ := signedRequest(t, tr, http.MethodGet, devicesPath(long), nil, "", ""); code != http.StatusBadRequest {
		t.Errorf("GET for a user of 257 bytes: %d, want 400", code)
	}
}

// TestDeviceListLayout builds a list by hand from the layout documented in
// devicelists.go and the README (docs/SPEC.md 22.2, signed as in 5.4):
// keys.ParseDeviceList accepts it, so the documented signed bytes are
// keys', and so does the relay, which reads only the layout.
func TestDeviceListLayout(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().Unix())
	body := []byte{1, 0x02}                              // format, key type
	body = append(body, pub...)                          // account key
	body = binary.BigEndian.AppendUint64(body, 1)        // version
	body = append(body, make([]byte, 32)...)             // previous: none
	body = binary.BigEndian.AppendUint64(body, now)      // issued
	body = binary.BigEndian.AppendUint64(body, now+3600) // expires
	body = append(body, 1)                               // one device
	body = binary.BigEndian.AppendUint32(body, 7)
	body = append(body, keys.GenerateIdentity().Public().Bytes()...)
	body = append(body, 5)
	body = append(body, "phone"...)
	const label = "sealpost v1 sig device list"
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(label)))
	msg = append(msg, label...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(body)))
	msg = append(msg, body...)
	raw := append(body, ed25519.Sign(priv, msg)...)

	l, err := keys.ParseDeviceList(raw)
	if err != nil {
		t.Fatalf("keys.ParseDeviceList of the documented layout: %v", err)
	}
	if l.Version != 1 || len(l.Devices) != 1 || l.Devices[0].ID != 7 {
		t.Fatalf("parsed %+v", l)
	}
	tr := startRelay(t, server.Config{Rate: -1})
	if code, msg := putList(t, tr, "dave", raw); code != http.StatusCreated {
		t.Fatalf("the relay refused the documented layout: %d %q", code, msg)
	}
}

// TestDeviceListRace: uploads racing for one account are decided by the
// compare-and-swap on NATS. Of eight first lists by eight account keys
// exactly one is pinned (201) and the others are another key's (403); of
// eight second lists by the pinned key, all of version 2, exactly one is
// stored (204) and the others are not newer (409).
func TestDeviceListRace(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1})
	race := func(lists []*keys.DeviceList) map[int]int {
		codes := make([]int, len(lists))
		var wg sync.WaitGroup
		for i, l := range lists {
			wg.Go(func() { codes[i], _ = putList(t, tr, "erin", l.Bytes()) })
		}
		wg.Wait()
		count := map[int]int{}
		for _, c := range codes {
			count[c]++
		}
		return count
	}
	var accounts []*keys.AccountKey
	var firsts []*keys.DeviceList
	for range 8 {
		k := keys.GenerateAccountKey()
		accounts = append(accounts, k)
		firsts = append(firsts, deviceList(t, k, nil, 1))
	}
	if got := race(firsts); got[http.StatusCreated] != 1 || got[http.StatusForbidden] != 7 {
		t.Fatalf("eight first lists: %v, want one 201 and seven 403", got)
	}
	stored, err := tr.client().FetchDeviceList(context.Background(), "erin")
	if err != nil {
		t.Fatal(err)
	}
	var pinned int
	for pinned = range firsts {
		if bytes.Equal(firsts[pinned].Bytes(), stored) {
			break
		}
	}
	var seconds []*keys.DeviceList
	for range 8 {
		seconds = append(seconds, deviceList(t, accounts[pinned], firsts[pinned], 2))
	}
	if got := race(seconds); got[http.StatusNoContent] != 1 || got[http.StatusConflict] != 7 {
		t.Fatalf("eight second lists: %v, want one 204 and seven 409", got)
	}
	stored, err = tr.client().FetchDeviceList(context.Background(), "erin")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(seconds, func(l *keys.DeviceList) bool { return bytes.Equal(l.Bytes(), stored) }) {
		t.Fatal("the stored list is none of the second lists")
	}
}
