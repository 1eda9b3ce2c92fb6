package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestRefusalsPermanent: the relay's 4xx answers reach attach as
// permanent errors (a Permanent method that says true), but a 408, a 429
// and a 409 to a PATCH, which a retry can mend; the StatusError stays in
// the chain.
func TestRefusalsPermanent(t *testing.T) {
	var code atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(code.Load()))
	}))
	defer hs.Close()
	blobs := New(hs.URL).Blobs()
	ctx := context.Background()
	for _, c := range []struct {
		code      int
		get, put  bool // permanent for a Get, for a Put
		offsetErr bool
	}{
		{404, true, true, true}, {413, true, true, true}, {400, true, true, true}, {410, true, true, true},
		{409, true, false, true}, {408, false, false, false}, {429, false, false, false},
		{500, false, false, false}, {503, false, false, false},
	} {
		code.Store(int64(c.code))
		_, errGet := blobs.Get(ctx, "id.token", 0, 10)
		errPut := blobs.Put(ctx, "id.token", 0, strings.NewReader("x"))
		_, errOff := blobs.Offset(ctx, "id.token")
		for _, e := range []struct {
			what string
			err  error
			want bool
		}{{"Get", errGet, c.get}, {"Put", errPut, c.put}, {"Offset", errOff, c.offsetErr}} {
			var p interface{ Permanent() bool }
			if got := errors.As(e.err, &p) && p.Permanent(); got != e.want {
				t.Errorf("%d to a %s: permanent %v, want %v (%v)", c.code, e.what, got, e.want, e.err)
			}
			if !IsStatus(e.err, c.code) {
				t.Errorf("%d to a %s: %v is not the StatusError", c.code, e.what, e.err)
			}
		}
	}
}

// sizes records the size of each Write.
type sizes []int

func (s *sizes) Write(p []byte) (int, error) { *s = append(*s, len(p)); return len(p), nil }

// TestBodyWriteTo: the transport copies Put's body through WriteTo, in
// writes of 256 KiB, and it stops with the guard.
func TestBodyWriteTo(t *testing.T) {
	g := &bodyGuard{r: strings.NewReader(strings.Repeat("x", 600<<10))}
	var w sizes
	if n, err := g.WriteTo(&w); err != nil || n != 600<<10 || len(w) != 3 || w[0] != 256<<10 || w[2] != 88<<10 {
		t.Fatalf("WriteTo = %d, %v; writes %v", n, err, w)
	}
	g = &bodyGuard{r: strings.NewReader("more")}
	g.stop()
	if _, err := g.WriteTo(&w); !errors.Is(err, errPutOver) {
		t.Fatalf("WriteTo after stop: %v", err)
	}
}
