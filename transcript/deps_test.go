package transcript_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the package rule of docs/SPEC.md section 2: transcript may import internal
// packages and proto/statepb, never keys, ratchet, envelope or the root.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/sealpost/sealpost"
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, mod)
		if !ok || rel == "/transcript" || rel == "/proto/statepb" || strings.HasPrefix(rel, "/internal/") {
			continue
		}
		t.Errorf("transcript transitively imports %s", pkg)
	}
}
