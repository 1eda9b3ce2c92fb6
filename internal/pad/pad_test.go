package pad

import (
	"bytes"
	"errors"
	"testing"
)

func TestSize(t *testing.T) {
	tests := []struct{ n, want int }{
		{0, 384}, {1, 384}, {100, 384}, {383, 384},
		{384, 400},               // Padmé(385): e=8, s=4, mask=15
		{1000, 1024},             // Padmé(1001): e=9, s=4, mask=31
		{1 << 16, 1<<16 + 1<<11}, // Padmé(65537): e=16, s=5, mask=2047
	}
	for _, tt := range tests {
		if got := Size(tt.n); got != tt.want {
			t.Errorf("Size(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// TestSizeProperties checks every length up to 70 KiB: padded sizes never
// shrink, always leave room for the marker, and cost at most 12%.
func TestSizeProperties(t *testing.T) {
	prev := 0
	for n := range 70 << 10 {
		s := Size(n)
		if s < n+1 || s < prev {
			t.Fatalf("Size(%d) = %d (previous %d)", n, s, prev)
		}
		if n >= MinSize && float64(s) > 1.12*float64(n+1) {
			t.Fatalf("Size(%d) = %d is more than 12%% overhead", n, s)
		}
		prev = s
	}
}

func TestRoundTrip(t *testing.T) {
	for _, msg := range [][]byte{nil, {0}, {0x80}, {0x80, 0}, bytes.Repeat([]byte{0}, 300), bytes.Repeat([]byte{0x80}, 5000)} {
		p := Append(nil, msg)
		if len(p) != Size(len(msg)) {
			t.Fatalf("len %d, want %d", len(p), Size(len(msg)))
		}
		got, err := Unpad(p)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Unpad(Append(%x)) = %x, %v", msg, got, err)
		}
	}
}

func TestUnpadRejects(t *testing.T) {
	good := Append(nil, []byte("hello"))
	noMarker := bytes.Clone(good)
	noMarker[5] = 0
	wrongLen := append(bytes.Clone(good), 0)
	for name, p := range map[string][]byte{"empty": nil, "all zero": make([]byte, 256), "no marker": noMarker, "wrong length": wrongLen, "short": {0x80}} {
		if _, err := Unpad(p); !errors.Is(err, ErrBadPadding) {
			t.Errorf("%s: Unpad = %v, want ErrBadPadding", name, err)
		}
	}
}

// FuzzUnpad checks Unpad never panics and that whatever it accepts pads
// back to exactly the input.
func FuzzUnpad(f *testing.F) {
	f.Add(Append(nil, []byte("hello")))
	f.Add([]byte{0x80})
	f.Add(make([]byte, 256))
	f.Fuzz(func(t *testing.T, p []byte) {
		msg, err := Unpad(p)
		if err != nil {
			return
		}
		if again := Append(nil, msg); !bytes.Equal(again, p) {
			t.Fatalf("Append(Unpad(p)) != p")
		}
	})
}
