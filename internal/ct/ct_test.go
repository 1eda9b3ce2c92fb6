package ct

import "testing"

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b []byte
		want bool
	}{
		{nil, nil, true},
		{[]byte{1, 2}, []byte{1, 2}, true},
		{[]byte{1, 2}, []byte{1, 3}, false},
		{[]byte{1, 2}, []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%x, %x) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestIsZero(t *testing.T) {
	if !IsZero(make([]byte, 32)) || !IsZero(nil) {
		t.Fatal("zero input not reported zero")
	}
	for i := range 32 {
		b := make([]byte, 32)
		b[i] = 0x80
		if IsZero(b) {
			t.Fatalf("non-zero byte %d missed", i)
		}
	}
}
