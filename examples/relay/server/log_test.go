package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/server"
)

// TestRequestLogLine checks the request line's fields with the JSON
// handler the relay command uses: the duration is took_ms, a number of
// milliseconds (slog.Duration would be integer nanoseconds, no unit).
func TestRequestLogLine(t *testing.T) {
	var buf syncBuffer
	tr := startRelay(t, server.Config{Rate: -1, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	start := time.Now()
	if err := tr.client().Post(context.Background(), fakeEnvelope([]byte("log-line"), 1, 16)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	tr.stop()
	var line map[string]any
	for l := range strings.SplitSeq(buf.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			break
		}
	}
	if line == nil {
		t.Fatalf("no request line:\n%s", buf.String())
	}
	if _, ok := line["took"]; ok {
		t.Errorf("a took field without a unit: %v", line)
	}
	ms, ok := line["took_ms"].(float64)
	if !ok || ms < 0 || ms > float64(took)/float64(time.Millisecond) {
		t.Errorf("took_ms %v (%T), want milliseconds, at most the %v the client saw", line["took_ms"], line["took_ms"], took)
	}
	for k, want := range map[string]any{"method": "POST", "route": "POST /v1/envelopes", "status": 202.0, "ip": "127.0.0.1"} {
		if line[k] != want {
			t.Errorf("%s is %v, want %v", k, line[k], want)
		}
	}
}
