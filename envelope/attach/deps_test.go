package attach_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the import rule of docs/SPEC.md section 21.7 for
// envelope/attach: it links
// internal packages, the standard library and x/crypto only; no key-holding
// sealpost package (root, keys, ratchet, transcript, envelope/seal) and no
// other module.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var sawAttach bool
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "github.com/sealpost/sealpost/envelope/attach":
			sawAttach = true
		case strings.HasPrefix(pkg, "github.com/sealpost/sealpost/internal/"),
			strings.HasPrefix(pkg, "golang.org/x/crypto/"), strings.HasPrefix(pkg, "golang.org/x/sys/"),
			!strings.Contains(strings.Split(pkg, "/")[0], "."): // the standard library
		default:
			t.Errorf("envelope/attach transitively imports %s", pkg)
		}
	}
	if !sawAttach {
		t.Fatal("go list did not list envelope/attach")
	}
}
