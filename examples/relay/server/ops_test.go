package server_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/sealpost/sealpost/examples/relay/server"
	"github.com/sealpost/sealpost/keys"
)

// sampleLine is one sample of the text exposition format.
type sampleLine struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is a parsed /metrics page: the type of each declared family and
// every sample.
type scrape struct {
	types   map[string]string
	samples []sampleLine
}

// value returns the sample of name whose labels include want (as
// "k=v" pairs), failing if there is none.
func (s *scrape) value(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	for _, sm := range s.samples {
		if sm.name != name {
			continue
		}
		ok := true
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if sm.labels[k] != v {
				ok = false
			}
		}
		if ok {
			return sm.value
		}
	}
	t.Fatalf("no sample %s %v", name, want)
	return 0
}

// getMetrics scrapes tr and parses the page as the Prometheus text format
// 0.0.4, checking what a scraper relies on: every sample belongs to a
// family declared by a TYPE line before it (with a HELP line), counters
// end in _total, and each histogram's cumulative buckets never decrease
// and end with le="+Inf" equal to its _count.
func getMetrics(t *testing.T, tr *testRelay) *scrape {
	t.Helper()
	resp, err := http.Get(tr.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
	s := &scrape{types: map[string]string{}}
	helps := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			f := strings.SplitN(rest, " ", 3)
			if len(f) < 3 {
				t.Fatalf("line %d: %q", n, line)
			}
			switch f[0] {
			case "HELP":
				helps[f[1]] = true
			case "TYPE":
				if _, dup := s.types[f[1]]; dup {
					t.Errorf("line %d: %s declared twice", n, f[1])
				}
				switch f[2] {
				case "counter", "gauge", "histogram":
				default:
					t.Errorf("line %d: type %q", n, f[2])
				}
				if f[2] == "counter" && !strings.HasSuffix(f[1], "_total") {
					t.Errorf("line %d: counter %s does not end in _total", n, f[1])
				}
				s.types[f[1]] = f[2]
			}
			continue
		}
		sm := parseSample(t, n, line)
		family := sm.name
		if s.types[family] == "" {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(sm.name, suf); ok && s.types[base] == "histogram" {
					family = base
				}
			}
		}
		if s.types[family] == "" {
			t.Errorf("line %d: sample of %s, declared by no TYPE line before it", n, sm.name)
		}
		if !helps[family] {
			t.Errorf("line %d: %s has no HELP line", n, family)
		}
		s.samples = append(s.samples, sm)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for name, typ := range s.types {
		if typ != "histogram" {
			continue
		}
		prev, last := -1.0, math.Inf(-1)
		var inf float64
		sawInf := false
		for _, sm := range s.samples {
			if sm.name != name+"_bucket" {
				continue
			}
			le, err := strconv.ParseFloat(sm.labels["le"], 64)
			if err != nil {
				t.Errorf("%s: le %q", name, sm.labels["le"])
			}
			if le <= last || sm.value < prev {
				t.Errorf("%s: bucket le=%s of %v after le=%v of %v", name, sm.labels["le"], sm.value, last, prev)
			}
			last, prev = le, sm.value
			if math.IsInf(le, 1) {
				inf, sawInf = sm.value, true
			}
		}
		if !sawInf {
			t.Errorf("%s: no le=\"+Inf\" bucket", name)
		}
		if c := s.value(t, name+"_count"); c != inf {
			t.Errorf("%s: _count %v, +Inf bucket %v", name, c, inf)
		}
		s.value(t, name+"_sum")
	}
	return s
}

// parseSample parses `name{k="v",...} value`.
func parseSample(t *testing.T, n int, line string) sampleLine {
	t.Helper()
	sm := sampleLine{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		t.Fatalf("line %d: %q", n, line)
	}
	sm.name, line = line[:i], line[i:]
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			eq := strings.Index(line, "=\"")
			if eq <= 0 {
				t.Fatalf("line %d: labels %q", n, line)
			}
			key := line[:eq]
			line = line[eq+1:]
			// The quoted value ends at the first unescaped quote.
			end := 1
			for ; end < len(line) && line[end] != '"'; end++ {
				if line[end] == '\\' {
					end++
				}
			}
			if end >= len(line) {
				t.Fatalf("line %d: unterminated label value", n)
			}
			v, err := strconv.Unquote(line[:end+1])
			if err != nil {
				t.Fatalf("line %d: label value %s: %v", n, line[:end+1], err)
			}
			sm.labels[key] = v
			line = strings.TrimPrefix(line[end+1:], ",")
		}
		line = line[1:]
	}
	v, err := strconv.ParseFloat(strings.TrimPrefix(line, " "), 64)
	if err != nil || !strings.HasPrefix(line, " ") {
		t.Fatalf("line %d: value %q: %v", n, line, err)
	}
	sm.value = v
	return sm
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (tr *testRelay) current() *server.Relay {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.relay
}

// TestMetrics posts, delivers and acknowledges envelopes and has requests
// refused, and checks that /metrics parses, that each counter moved by
// what happened, and that no label value names a mailbox or a user.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: 50, Burst: 30})
	c := tr.client()
	before := getMetrics(t, tr)
	if v := before.value(t, "sealpost_relay_envelopes_accepted_total"); v != 0 {
		t.Fatalf("accepted %v on a new relay", v)
	}

	mbx := []byte("metrics-mailbox-id")
	owner := tr.own(mbx)
	env1, env2 := fakeEnvelope(mbx, 1, 100), fakeEnvelope(mbx, 2, 300)
	// env1 twice: the retry is answered 202 but stored (and counted) once.
	for _, env := range [][]byte{env1, env2, env1} {
		if err := c.Post(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutBundle(ctx, uploadKey, "alice-the-user", 7, [][]byte{[]byte("ot")}, []byte("lr")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.FetchBundle(ctx, "alice-the-user", 7); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		d, ok := next(t, sub, 10*time.Second)
		if !ok {
			t.Fatal("no delivery")
		}
		if err := sub.Ack(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.pending(mbx) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Refusals: junk (malformed), a mailbox read signed by another key
	// (forbidden), an unsigned one (unauthorized), an unknown route.
	if code, _ := signedRequest(t, tr, http.MethodPost, "/v1/envelopes", []byte("junk"), "", ""); code != http.StatusBadRequest {
		t.Fatalf("junk: %d", code)
	}
	if code, _ := signedRequest(t, tr, http.MethodGet, "/v1/mailboxes/"+hex.EncodeToString(mbx), nil, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned read: %d", code)
	}
	if _, err := c.Subscribe(ctx, mbx, mustKey()); err == nil {
		t.Fatal("a stranger's key opened the mailbox")
	}
	if code := getStatus(t, tr.url()+"/nope/"+hex.EncodeToString(mbx)); code != http.StatusNotFound {
		t.Fatalf("unknown route: %d", code)
	}

	m := getMetrics(t, tr)
	want := map[string]float64{
		"sealpost_relay_envelopes_accepted_total":      2,
		"sealpost_relay_envelopes_delivered_total":     2,
		"sealpost_relay_envelopes_acked_total":         2,
		"sealpost_relay_envelope_bytes_in_total":       float64(len(env1) + len(env2)),
		"sealpost_relay_envelope_bytes_out_total":      float64(len(env1) + len(env2)),
		"sealpost_relay_subscriptions_open":            1,
		"sealpost_relay_mailbox_depth_count":           1,
		"sealpost_relay_nats_publish_seconds_count":    3,
		"sealpost_relay_nats_ack_delete_seconds_count": 2,
		"sealpost_relay_nats_connected":                1,
		"sealpost_relay_draining":                      0,
	}
	for name, v := range want {
		if got := m.value(t, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	// The mailbox held both envelopes when it was opened: bucket le=2.
	if got := m.value(t, "sealpost_relay_mailbox_depth_bucket", "le=1"); got != 0 {
		t.Errorf("depth le=1: %v, want 0", got)
	}
	if got := m.value(t, "sealpost_relay_mailbox_depth_bucket", "le=2"); got != 1 {
		t.Errorf("depth le=2: %v, want 1", got)
	}
	if s := m.value(t, "sealpost_relay_nats_publish_seconds_sum"); s <= 0 || s > 10 {
		t.Errorf("publish seconds sum %v", s)
	}
	for reason, n := range map[string]float64{"malformed": 1, "unauthorized": 1, "forbidden": 1, "not_found": 1, "rate_limited": 0, "mailbox_full": 0} {
		if got := m.value(t, "sealpost_relay_refusals_total", "reason="+reason); got != n {
			t.Errorf("refusals %s = %v, want %v", reason, got, n)
		}
	}
	for route, n := range map[string]float64{"POST /v1/envelopes|2xx": 3, "POST /v1/envelopes|4xx": 1,
		"PUT /v1/mailboxes/{mailbox}/owner|2xx": 1, "GET /metrics|2xx": 1, "unmatched|4xx": 1} {
		r, class, _ := strings.Cut(route, "|")
		if got := m.value(t, "sealpost_relay_http_requests_total", "route="+r, "code="+class); got != n {
			t.Errorf("requests %s %s = %v, want %v", r, class, got, n)
		}
	}

	if got := m.value(t, "sealpost_relay_http_request_bytes_total", "route=POST /v1/envelopes"); got != float64(2*len(env1)+len(env2)+len("junk")) {
		t.Errorf("request bytes of POST /v1/envelopes: %v", got)
	}
	if got := m.value(t, "sealpost_relay_http_response_bytes_total", "route=GET /v1/bundles/{user}/{device}"); got != float64(len("ot")) {
		t.Errorf("response bytes of GET bundles: %v", got)
	}

	// A refusal moves its reason: exhaust the burst.
	for range 40 {
		signedRequest(t, tr, http.MethodPost, "/v1/envelopes", []byte("x"), "", "")
	}
	m = getMetrics(t, tr)
	if got := m.value(t, "sealpost_relay_refusals_total", "reason=rate_limited"); got == 0 {
		t.Error("rate-limited requests not counted")
	}
	sub.Close()

	// Nothing a compelled operator could link users by: every label value
	// is one of the fixed enums, and none holds a mailbox or a user.
	forbidden := []string{hex.EncodeToString(mbx), string(mbx), "alice", hex.EncodeToString([]byte("alice-the-user")), "127.0.0.1", "nope"}
	for _, sm := range m.samples {
		for k, v := range sm.labels {
			for _, bad := range forbidden {
				if strings.Contains(v, bad) {
					t.Errorf("%s label %s=%q contains %q", sm.name, k, v, bad)
				}
			}
			if k != "route" && k != "code" && k != "reason" && k != "le" {
				t.Errorf("%s has a label %s", sm.name, k)
			}
		}
	}
}

// TestProbes: livez and readyz answer 200 on a running relay; once the
// drain begins readyz is 503 at once, a new mailbox connection is refused
// (and counted as draining), while posts are still served and livez and
// healthz stay 200.
func TestProbes(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	for _, p := range []string{"/livez", "/readyz", "/healthz"} {
		if code := getStatus(t, tr.url()+p); code != http.StatusOK {
			t.Errorf("%s: %d", p, code)
		}
	}
	mbx := []byte("probes")
	owner := tr.own(mbx)
	tr.current().StartDrain()
	if code := getStatus(t, tr.url()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining: %d", code)
	}
	for _, p := range []string{"/livez", "/healthz"} {
		if code := getStatus(t, tr.url()+p); code != http.StatusOK {
			t.Errorf("%s while draining: %d", p, code)
		}
	}
	if _, err := tr.client().Subscribe(ctx, mbx, owner); err == nil {
		t.Error("a mailbox connection was opened while draining")
	}
	if err := tr.client().Post(ctx, fakeEnvelope(mbx, 1, 32)); err != nil {
		t.Errorf("a post while draining: %v", err)
	}
	m := getMetrics(t, tr)
	if got := m.value(t, "sealpost_relay_draining"); got != 1 {
		t.Errorf("draining gauge %v", got)
	}
	if got := m.value(t, "sealpost_relay_refusals_total", "reason=draining"); got != 2 {
		t.Errorf("draining refusals %v, want 2 (readyz and the mailbox read)", got)
	}
}

// TestReadyzFollowsNATS: readyz is 503 while the relay's NATS server is
// down (livez stays 200) and 200 again once it is back.
func TestReadyzFollowsNATS(t *testing.T) {
	store := t.TempDir()
	startNATS := func(port int) *natsserver.Server {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true,
			StoreDir: store, NoSigs: true, NoLog: true})
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats did not start")
		}
		return ns
	}
	ns := startNATS(-1)
	port := ns.Addr().(*net.TCPAddr).Port
	tr := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1})
	if code := getStatus(t, tr.url()+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	waitStatus := func(path string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for getStatus(t, tr.url()+path) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s is not %d", path, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus("/readyz", http.StatusServiceUnavailable)
	if code := getStatus(t, tr.url()+"/livez"); code != http.StatusOK {
		t.Errorf("livez with NATS down: %d", code)
	}
	ns = startNATS(port)
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	waitStatus("/readyz", http.StatusOK)
	tr.stop() // before its NATS server
}

// copyDir copies a data folder, as a backup would.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, raw, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestore follows the README's procedure for the embedded NATS:
// stop the relay, copy its data folder, start a relay on the copy. An
// accepted envelope, a device list, a bundle and a mailbox's owner all
// come back.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	tr := startRelay(t, server.Config{DataDir: data, Rate: -1})
	c := tr.client()
	mbx := []byte("backed-up")
	owner := tr.own(mbx)
	env := fakeEnvelope(mbx, 9, 500)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	list := deviceList(t, keys.GenerateAccountKey(), nil, 2)
	if err := c.PutDeviceList(ctx, "carol", list.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBundle(ctx, uploadKey, "carol", 1, nil, []byte("last resort")); err != nil {
		t.Fatal(err)
	}
	tr.stop()
	if _, err := os.Stat(filepath.Join(data, "jetstream")); err != nil {
		t.Fatalf("JetStream's folder: %v", err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(t, data, backup)
	if err := os.RemoveAll(data); err != nil { // the disk is lost
		t.Fatal(err)
	}

	restored := startRelay(t, server.Config{DataDir: backup, Rate: -1})
	c = restored.client()
	wantStored(t, c, "carol", list)
	blob, oneTime, err := c.FetchBundle(ctx, "carol", 1)
	if err != nil || string(blob) != "last resort" || oneTime {
		t.Fatalf("bundle after restore: %q (one-time %v) %v", blob, oneTime, err)
	}
	sub, err := c.Subscribe(ctx, mbx, owner) // the owner key survived too
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, ok := next(t, sub, 10*time.Second)
	if !ok || string(d.Envelope) != string(env) {
		t.Fatalf("envelope after restore: %v", ok)
	}
}
