package ratchet

import (
	"bytes"
	"testing"
)

// TestRollbackNeverReusesKeyAndNonce restores a sender from an old snapshot
// (a backup) and encrypts again from it (checklist item 35): the same message
// key comes back, but a different plaintext gets a different body nonce,
// so no (key, nonce) pair seals two plaintexts; the same plaintext gives the
// same message, which leaks only equality.
func TestRollbackNeverReusesKeyAndNonce(t *testing.T) {
	alice, _ := pairFrom(t, "rollback")
	snap, err := alice.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restore := func() *Session {
		s := new(Session)
		if err := s.UnmarshalBinary(snap); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tagX, x, _ := restore().Encrypt([]byte("first plaintext"))
	tagY, y, _ := restore().Encrypt([]byte("other plaintext"))
	_, x2, _ := restore().Encrypt([]byte("first plaintext"))
	if tagX != tagY {
		t.Fatal("restored sessions should re-derive the same chain position")
	}
	if bytes.Equal(x[nonceOffset:headerOffset], y[nonceOffset:headerOffset]) {
		t.Fatal("different plaintexts under a re-derived key share a nonce")
	}
	if !bytes.Equal(x, x2) {
		t.Fatal("the same plaintext should give the same message")
	}
}
