package envelope_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/internal/wire"
)

// FuzzEnvelopeParse feeds Parse arbitrary bytes: it must never panic, must
// return the zero Header with any error, must allocate nothing, and a header
// it accepts must re-encode to the same prefix of the input.
func FuzzEnvelopeParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		// A vector file is a text header, a blank line, then the raw
		// envelope: seed the envelope, not the file.
		_, raw, ok := bytes.Cut(data, []byte("\n\n"))
		if !ok {
			f.Fatalf("%s: no blank line after the header", name)
		}
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := envelope.Parse(raw)
		if err != nil {
			if h.Version != 0 || h.Mailbox != nil || h.Tag != [16]byte{} {
				t.Fatalf("non-zero header with error %v", err)
			}
			return
		}
		again := wire.AppendHeader(nil, h.Mailbox, h.Tag, len(raw)-wire.HeaderSize(len(h.Mailbox)))
		if !bytes.HasPrefix(raw, again) || len(raw)-len(again) < wire.MinBody {
			t.Fatalf("accepted header does not re-encode to the input prefix")
		}
		if allocs := testing.AllocsPerRun(1, func() { _, _ = envelope.Parse(raw) }); allocs != 0 {
			t.Fatalf("Parse allocated %v times", allocs)
		}
	})
}
