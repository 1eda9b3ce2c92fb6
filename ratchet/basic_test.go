package ratchet

import (
	"fmt"
	"testing"
)

func TestConversation(t *testing.T) {
	alice, bob := pairFrom(t, "conversation")
	for round := range 5 {
		for i := range round + 1 {
			recv(t, bob, send(t, alice, fmt.Sprintf("a%d.%d", round, i)))
		}
		for i := range round {
			recv(t, alice, send(t, bob, fmt.Sprintf("b%d.%d", round, i)))
		}
	}
}

func TestOutOfOrderAcrossDHStep(t *testing.T) {
	alice, bob := pairFrom(t, "ooo")
	a1, a2, a3 := send(t, alice, "a1"), send(t, alice, "a2"), send(t, alice, "a3")
	recv(t, bob, a2)
	b1 := send(t, bob, "b1")
	recv(t, alice, b1)
	a4 := send(t, alice, "a4") // new chain; PN = 3
	recv(t, bob, a4)           // skips a3 in the old chain via PN
	recv(t, bob, a3)
	recv(t, bob, a1)
	mustFail(t, bob, a1.tag, a1.msg, ErrDuplicate)
	if bob.skipped.count != 0 {
		t.Fatalf("skipped = %d, want 0", bob.skipped.count)
	}
}
