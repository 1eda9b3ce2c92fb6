package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// endless yields bytes forever and counts the Reads made after its owner
// said it was done with the Put.
type endless struct {
	returned atomic.Bool
	late     atomic.Int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.returned.Load() {
		e.late.Add(1)
	}
	time.Sleep(time.Millisecond)
	return min(len(p), 1024), nil
}

// TestPutStopsReading: once Put returns, the request body is not read any
// more, even though the transport's write goroutine is still sending it
// (here the relay answers before it read the body). attach.Upload reads
// the same reader again to resume, so a late read races with it.
func TestPutStopsReading(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upload-Offset", "0")
		w.WriteHeader(http.StatusNoContent)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(200 * time.Millisecond) // keep the connection while the client writes
	}))
	defer hs.Close()
	r := &endless{}
	err := New(hs.URL).Blobs().Put(context.Background(), "id.token", 0, r)
	r.returned.Store(true)
	if err == nil {
		t.Fatal("Put of an endless body answered with offset 0 succeeded")
	}
	time.Sleep(100 * time.Millisecond)
	if n := r.late.Load(); n > 0 {
		t.Fatalf("the body was read %d times after Put returned", n)
	}
}
