package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServerSideImports enforces the server rule (docs/SPEC.md section 2) on the
// relay, its server and its client: no sealpost package but envelope (and
// the two key-free internal packages it is built on) is linked, so no key
// material can be reached from the relay. The standard library's crypto
// is there (net/http needs it); sealpost's is not.
func TestServerSideImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"github.com/sealpost/sealpost/envelope":      true,
		"github.com/sealpost/sealpost/internal/wire": true,
		"github.com/sealpost/sealpost/internal/errs": true,
	}
	var sawEnvelope, sawServer bool
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "github.com/sealpost/sealpost/envelope":
			sawEnvelope = true
		case pkg == "github.com/sealpost/sealpost/examples/relay/server":
			sawServer = true
		}
		if strings.HasPrefix(pkg, "github.com/sealpost/sealpost/examples/relay") {
			continue
		}
		if strings.HasPrefix(pkg, "github.com/sealpost/sealpost") && !allowed[pkg] {
			t.Errorf("the relay transitively imports %s", pkg)
		}
		for _, bad := range []string{"cloudflare/circl", "google.golang.org/protobuf", "go.etcd.io/bbolt"} {
			if strings.Contains(pkg, bad) {
				t.Errorf("the relay transitively imports %s", pkg)
			}
		}
	}
	if !sawEnvelope || !sawServer {
		t.Fatalf("go list saw envelope %v, server %v: the test is not looking at the relay", sawEnvelope, sawServer)
	}
}
