package transcript_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// pair is Alice and Bob with every content each has sent.
type pair struct {
	conv map[byte]*transcript.Conversation
	sent map[byte][]msg
}

func newPair() *pair {
	return &pair{
		conv: map[byte]*transcript.Conversation{'a': transcript.New(), 'b': transcript.New()},
		sent: map[byte][]msg{},
	}
}

func peerOf(who byte) byte { return 'a' + 'b' - who }

// run plays one script step: "a" (Alice sends), "B3" (Bob receives
// Alice's content 3), optionally followed by " => " and the findings the
// step must return, separated by "; ". A step without "=>" must return
// none.
func (p *pair) run(t *testing.T, step string) {
	t.Helper()
	do, want, _ := strings.Cut(step, " => ")
	var wants []string
	if want != "" {
		wants = strings.Split(want, "; ")
	}
	if do == "a" || do == "b" {
		p.sent[do[0]] = append(p.sent[do[0]], send(t, p.conv[do[0]], do[0], "hello "+step))
		return
	}
	who := do[0] - 'A' + 'a'
	n, err := strconv.Atoi(do[1:])
	if err != nil {
		t.Fatalf("bad step %q", step)
	}
	got := recv(t, p.conv[who], p.sent[peerOf(who)][n-1])
	if !equal(got, wants) {
		t.Fatalf("step %q returned %q, want %q", step, got, wants)
	}
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		name       string
		steps      []string
		alice, bob []string // open findings at the end
	}{{
		name:  "in order, both ways",
		steps: []string{"a", "B1", "a", "a", "B2", "B3", "b", "A1", "b", "b", "A2", "a", "B4", "A3"},
	}, {
		name:  "relay drops a2",
		steps: []string{"a", "a", "a", "B1", "B3 => gap: peer seq 2", "b", "A1 => drop: our seq 2 [a2]"},
		alice: []string{"drop: our seq 2 [a2]"},
		bob:   []string{"gap: peer seq 2"},
	}, {
		name: "relay drops a2, Alice sends more before Bob replies: the drop is exact",
		steps: []string{"a", "a", "a", "a", "a", "B1", "B3 => gap: peer seq 2", "B4", "B5", "b",
			"A1 => drop: our seq 2 [a2]"},
		alice: []string{"drop: our seq 2 [a2]"},
		bob:   []string{"gap: peer seq 2"},
	}, {
		name:  "relay drops a run",
		steps: []string{"a", "a", "a", "a", "B1", "B4 => gap: peer seqs 2-3", "b", "A1 => drop: our seqs 2-3 [a2 a3]"},
		alice: []string{"drop: our seqs 2-3 [a2 a3]"},
		bob:   []string{"gap: peer seqs 2-3"},
	}, {
		name:  "relay reorders a2 and a3",
		steps: []string{"a", "a", "a", "B1", "B3 => gap: peer seq 2", "B2", "b", "A1"},
	}, {
		name: "reorder seen by Alice as a drop, closed by Bob's next report",
		steps: []string{"a", "a", "a", "B1", "B3 => gap: peer seq 2", "b", "A1 => drop: our seq 2 [a2]",
			"B2", "b", "A2"},
	}, {
		name: "a stale report arriving late does not reopen a closed drop",
		steps: []string{"a", "a", "a", "B1", "B3 => gap: peer seq 2", "b", "B2", "b",
			"A2 => gap: peer seq 1", "A1"},
	}, {
		name: "two gaps: only the first is reported to the sender until it closes",
		steps: []string{"a", "a", "a", "a", "a", "a", "B1", "B3 => gap: peer seq 2", "B5 => gap: peer seq 4", "B6",
			"b", "A1 => drop: our seq 2 [a2]", "B2", "b", "A2 => drop: our seq 4 [a4]"},
		alice: []string{"drop: our seq 4 [a4]"},
		bob:   []string{"gap: peer seq 4"},
	}, {
		name:  "a gap filled from the middle splits and closes",
		steps: []string{"a", "a", "a", "a", "a", "B1", "B5 => gap: peer seqs 2-4", "B3", "B2", "B4", "b", "A1"},
	}, {
		name:  "runs join across a filled gap",
		steps: []string{"a", "a", "a", "a", "a", "B2 => gap: peer seq 1", "B4 => gap: peer seq 3", "B5", "B3", "B1", "b", "A1"},
	}, {
		name: "both directions drop at once",
		steps: []string{"a", "a", "b", "b", "B2 => gap: peer seq 1", "A2 => gap: peer seq 1", "a", "b",
			"B3 => drop: our seq 1 [b1]", "A3 => drop: our seq 1 [a1]"},
		alice: []string{"gap: peer seq 1", "drop: our seq 1 [a1]"},
		bob:   []string{"gap: peer seq 1", "drop: our seq 1 [b1]"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair()
			for _, s := range tt.steps {
				p.run(t, s)
			}
			for who, want := range map[byte][]string{'a': tt.alice, 'b': tt.bob} {
				if got := describe(p.conv[who].Findings()); !equal(got, want) {
					t.Errorf("%c: open findings %q, want %q", who, got, want)
				}
			}
		})
	}
}
