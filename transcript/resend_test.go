package transcript_test

import (
	"slices"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// TestSentAfter checks what a peer that restored a backup holding our
// contents up to n is told to get again: the ids above n, oldest first,
// and a count of those the sent log no longer holds.
func TestSentAfter(t *testing.T) {
	alice := transcript.New()
	const total = transcript.MaxLog + 10
	for range total {
		send(t, alice, 'a', "m")
	}
	tests := []struct {
		name        string
		n           uint64
		first, last uint64 // seqs of the ids returned (0, 0: none)
		missing     uint64
	}{
		{"everything held", total, 0, 0, 0},
		{"past what was sent", total + 5, 0, 0, 0},
		{"the newest one lost", total - 1, total, total, 0},
		{"within the log", total - 20, total - 19, total, 0},
		{"the oldest held", total - transcript.MaxLog, total - transcript.MaxLog + 1, total, 0},
		{"older than the log", 3, total - transcript.MaxLog + 1, total, total - transcript.MaxLog - 3},
		{"nothing held", 0, total - transcript.MaxLog + 1, total, total - transcript.MaxLog},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, missing := alice.SentAfter(tc.n)
			if missing != tc.missing {
				t.Errorf("missing = %d, want %d", missing, tc.missing)
			}
			var want [][16]byte
			for seq := tc.first; tc.first != 0 && seq <= tc.last; seq++ {
				want = append(want, idFor('a', seq))
			}
			if !slices.Equal(ids, want) {
				t.Errorf("got %d ids, want %d (seqs %d..%d)", len(ids), len(want), tc.first, tc.last)
			}
		})
	}
	if ids, missing := transcript.New().SentAfter(0); ids != nil || missing != 0 {
		t.Errorf("empty transcript: %d ids, %d missing", len(ids), missing)
	}
}

// TestHasReceived checks that the received log answers whether a content
// id arrived before, within MaxLog contents, and that a clone answers the
// same.
func TestHasReceived(t *testing.T) {
	alice, bob := transcript.New(), transcript.New()
	const total = transcript.MaxLog + 5
	for range total {
		recv(t, bob, send(t, alice, 'a', "m"))
	}
	for _, c := range []*transcript.Conversation{bob, bob.Clone()} {
		if !c.HasReceived(idFor('a', total)) || !c.HasReceived(idFor('a', total-transcript.MaxLog+1)) {
			t.Error("a content in the received log is not reported")
		}
		if c.HasReceived(idFor('a', total-transcript.MaxLog)) {
			t.Error("a content older than the received log is reported")
		}
		if c.HasReceived(idFor('b', 1)) || c.HasReceived([16]byte{}) {
			t.Error("a content never received is reported")
		}
	}
	if alice.HasReceived(idFor('a', 1)) {
		t.Error("our own sent content is reported as received")
	}
}

// TestUnacknowledged: the range of our contents the peer's newest report
// does not cover grows with each send and shrinks with each report.
func TestUnacknowledged(t *testing.T) {
	alice, bob := transcript.New(), transcript.New()
	if from, to := alice.Unacknowledged(); from <= to {
		t.Fatalf("nothing sent: %d..%d", from, to)
	}
	for range 3 {
		recv(t, bob, send(t, alice, 'a', "m"))
	}
	if from, to := alice.Unacknowledged(); from != 1 || to != 3 {
		t.Fatalf("three sent, none acknowledged: %d..%d", from, to)
	}
	recv(t, alice, send(t, bob, 'b', "ack"))
	send(t, alice, 'a', "m")
	if from, to := alice.Unacknowledged(); from != 4 || to != 4 {
		t.Fatalf("three acknowledged, one more sent: %d..%d", from, to)
	}
}
