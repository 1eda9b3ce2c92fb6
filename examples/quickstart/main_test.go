package main

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// TestQuickstartRuns runs the quickstart and checks that it tells its
// story: what each line a newcomer reads is meant to explain is there.
func TestQuickstartRuns(t *testing.T) {
	var out bytes.Buffer
	r, err := conversation(&out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		// Addresses, mailbox ids and the bundle blobs are explained.
		"Addresses are user.device: alice.1 is Alice's device 1",
		"Mailbox ids (random; what the relay routes on): alice ",
		"published 3 bundle blobs: one per one-time prekey (2) and a last-resort one",
		// Every send has its transcript sequence number.
		`alice sends #1 "Hi Bob!"`,
		`alice sends #3 "first"`,
		`bob   sends #2, a receipt envelope (Flush)`,
		// Two sizes, each explained.
		"3605 bytes for bob's mailbox",
		"(first contacts: until Bob replies",
		"548 bytes for alice's mailbox",
		"(a session envelope: from here on",
		// Delivery receipts that ride along are shown, not only read ones.
		`alice   … with a delivery receipt riding along for "Hi Bob!", "Lunch at noon?"`,
		`alice got a delivered receipt from bob.1 for "second", "first", "did you get my last one?"`,
		`alice   … with a read receipt riding along for "did you get my last one?"`,
		// A reorder closes its gap; a drop stays open.
		"bob     transcript finding: gap: peer seq 3",
		"bob     closed: gap: peer seq 3 (alice's #3 arrived late: a reorder, not a loss)",
		"bob     transcript finding: gap: peer seq 5",
		`alice   transcript finding: drop: our seq 5 ("this one is dropped"`,
		"bob     gap: peer seq 5 (alice's #5 never arrived: lost, not late)",
		// What to do with the safety numbers.
		"safety number (bob)",
		"compare these 60 digits",
		// A file: the relay stores a padded, opaque blob; the pointer
		// rides in a message of the usual size; Bob gets the file back.
		`-- Alice sends Bob a file, "lunch-notes.txt" (3000 bytes), through the relay's blob store`,
		"relay: stores a blob of 4185 bytes under a random id: the 3000-byte file padded",
		"to the 4096-byte size bucket, plus 89 bytes of header, tag and trailer",
		"(01 is the format version, then the random header nonce; all after is ciphertext)",
		"relay: the file's name, media type and text appear nowhere in the blob",
		`alice sends #7 "the notes, as promised" with the file's pointer`,
		`bob     … carrying the file "lunch-notes.txt" (text/plain; charset=utf-8, 3000 bytes)`,
		"bob   downloads the blob: every chunk and the digest check out; 3000 bytes, the same as Alice's file",
		// The closing summary matches what the relay saw.
		"The relay saw 10 envelopes (9 messages, 1 with receipts only)",
		"8 ×   548 bytes: session envelopes: messages and receipts alike, one size",
		"2 ×  3605 bytes: first contacts",
		// Alice links her laptop; Bob's one SendUser reaches both devices.
		"-- Alice links a second device, her laptop (alice.2), to her account",
		"relay: stores alice's device list: a 295-byte blob, version 1 (it reads the account",
		"relay: stores alice's device list: a 436-byte blob, version 2, in place of the older one",
		"alice's phone signs version 2 of the list, naming the laptop, and posts it in a notice to each",
		`laptop is linked: its account's list, version 2, names 1 "phone", 2 "laptop"`,
		`bob   got alice's device list (version 2) in her notice: devices 1 "phone", 2 "laptop"`,
		"bob   fetches alice.2's bundle from the relay and starts a session with it",
		`bob   sends "See you both at noon!" to alice (SendUser): one envelope per device on her list`,
		`alice  got "See you both at noon!" from bob.1`,
		`laptop got "See you both at noon!" from bob.1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// A gap that closes is not reported as still open, and the dropped
	// message's gap never closes.
	if strings.Contains(text, "closed: gap: peer seq 5") {
		t.Errorf("the dropped message's gap closed:\n%s", text)
	}
	// Mailbox labels are consistent: the ids printed at the start are the
	// ones the relay lines name.
	ids := regexp.MustCompile(`alice ([0-9a-f]{8})…, bob ([0-9a-f]{8})…`).FindStringSubmatch(text)
	if ids == nil {
		t.Fatalf("no mailbox ids line:\n%s", text)
	}
	for _, want := range []string{"alice's mailbox " + ids[1], "bob's mailbox " + ids[2]} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The blob the relay stored is the one the output describes, and it
	// is opaque: a version byte and random-looking bytes, no name, no type,
	// no text of the file.
	if len(r.blobs.blobs) != 1 {
		t.Fatalf("the relay stores %d blobs", len(r.blobs.blobs))
	}
	for _, blob := range r.blobs.blobs {
		if len(blob) != 4185 {
			t.Errorf("the blob is %d bytes", len(blob))
		}
		head := regexp.MustCompile(`relay: the blob's first 16 bytes: ([0-9a-f]{32})\n`).FindStringSubmatch(text)
		if head == nil || head[1] != hex.EncodeToString(blob[:16]) || blob[0] != 1 {
			t.Errorf("first bytes printed %q, stored %x", head, blob[:16])
		}
		for _, clear := range []string{fileName, fileType, "text/plain", "lunch", "the usual place", "noon"} {
			if bytes.Contains(blob, []byte(clear)) {
				t.Errorf("the blob holds %q", clear)
			}
		}
		// Random-looking: a compressor finds nothing to take out (a
		// few bytes of slack for chance repeats).
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestCompression)
		w.Write(blob)
		w.Close()
		if z.Len() < len(blob)-16 {
			t.Errorf("the blob compresses from %d to %d bytes", len(blob), z.Len())
		}
	}
	// Both short forms printed are the same code's, and what the relay
	// stores for Alice's account is the list her devices hold: version 2,
	// phone and laptop.
	short := regexp.MustCompile(`…  (\d{4}-\d{4}-\d{4})\n`).FindStringSubmatch(text)
	if short == nil || !strings.Contains(text, "which shows "+short[1]+" too") {
		t.Errorf("short forms: %q", short)
	}
	l, err := keys.ParseDeviceList(r.lists["alice"], keys.WithClock(func() time.Time { return time.Date(2026, 11, 29, 12, 1, 0, 0, time.UTC) }))
	if err != nil || l.Version != 2 || len(l.Devices) != 2 || l.Devices[1].Name != "laptop" || len(r.lists["alice"]) != 436 {
		t.Errorf("the relay's list of alice: %v %+v", err, l)
	}
	// The safety numbers printed for both sides are the same 60 digits.
	sn := regexp.MustCompile(`safety number \((alice|bob)\) +((?:\d{5} ){11}\d{5})`).FindAllStringSubmatch(text, -1)
	if len(sn) != 2 || sn[0][2] != sn[1][2] {
		t.Errorf("safety numbers: %q", sn)
	}
}
