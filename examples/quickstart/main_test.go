package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstartRuns runs the quickstart and checks that it tells its
// story: what each line a newcomer reads is meant to explain is there.
func TestQuickstartRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
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
		"3602 bytes for bob's mailbox",
		"(first contacts: until Bob replies",
		"545 bytes for alice's mailbox",
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
		// The closing summary matches what the relay saw.
		"The relay saw 9 envelopes (8 messages, 1 with receipts only)",
		"7 ×   545 bytes: session envelopes: messages and receipts alike, one size",
		"2 ×  3602 bytes: first contacts",
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
	// The safety numbers printed for both sides are the same 60 digits.
	sn := regexp.MustCompile(`safety number \((alice|bob)\) +((?:\d{5} ){11}\d{5})`).FindAllStringSubmatch(text, -1)
	if len(sn) != 2 || sn[0][2] != sn[1][2] {
		t.Errorf("safety numbers: %q", sn)
	}
}
