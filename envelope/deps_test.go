package envelope_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServerSideImports enforces the server rule (docs/SPEC.md section 2): the
// transitive imports of envelope hold no key-holding sealpost package and
// no cryptography at all, so a relay that imports only envelope cannot
// reach key material.
func TestServerSideImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"github.com/sealpost/sealpost/envelope":      true,
		"github.com/sealpost/sealpost/internal/wire": true,
		"github.com/sealpost/sealpost/internal/errs": true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(pkg, "github.com/sealpost/sealpost") && !allowed[pkg],
			strings.HasPrefix(pkg, "crypto/"), pkg == "crypto",
			strings.Contains(pkg, "golang.org/x/crypto"),
			strings.Contains(pkg, "cloudflare/circl"),
			strings.Contains(pkg, "google.golang.org/protobuf"):
			t.Errorf("envelope transitively imports %s", pkg)
		}
	}
}
