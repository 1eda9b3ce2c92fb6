package sealpost_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCompression: no package of the library imports a compressor, so no
// path compresses data before it is encrypted, which would let an attacker
// who injects chosen text learn secrets from ciphertext lengths (CRIME and
// BREACH; TESTING.md item 49). The protobuf runtime links compress/gzip for its
// own descriptors, never for message data, so only the library's direct
// imports are checked.
func TestNoCompression(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 8 {
		t.Fatalf("go list found only %d packages", len(lines))
	}
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "compress/") || strings.Contains(imp, "/compress") ||
				strings.Contains(imp, "snappy") || strings.Contains(imp, "zstd") || strings.Contains(imp, "brotli") {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}
