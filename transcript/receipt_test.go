package transcript

import "testing"

// TestReceiptTooOld: once the sent log has dropped our oldest contents, a
// receipt naming one of them is too old to check, not a mismatch; before
// that, an unknown id is never too old.
func TestReceiptTooOld(t *testing.T) {
	a, b := New(), New()
	var first [16]byte
	for i := range MaxLog + 10 {
		id := [16]byte{byte(i), byte(i >> 8), 1}
		if i == 0 {
			first = id
		}
		f := a.Next()
		content := []byte{byte(i), byte(i >> 8)}
		if err := a.Sent(f, id, content); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Received(f, id, content); err != nil {
			t.Fatal(err)
		}
		if i == 0 && a.ReceiptTooOld([][16]byte{{9, 9, 9}}) {
			t.Fatal("an id never sent is too old while the log holds everything")
		}
	}
	if !a.ReceiptTooOld([][16]byte{first}) {
		t.Fatal("the first content, dropped from the log, is not too old")
	}
	n := MaxLog + 9
	last := [16]byte{byte(n), byte(n >> 8), 1}
	if a.ReceiptTooOld([][16]byte{last}) {
		t.Fatal("the newest content is too old")
	}
	if len(a.CheckReceipt([][16]byte{first}, [32]byte{})) != 1 {
		t.Fatal("CheckReceipt still reports what it cannot check")
	}
}
