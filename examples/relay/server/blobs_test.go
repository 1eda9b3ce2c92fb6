package server_test

import (
	"bytes"
	"context"
	"crypto/sha3"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// The relay's blob client is an attach.BlobStore (it cannot say so itself:
// the client must not import attach).
var _ attach.BlobStore = (*client.BlobStore)(nil)

const testPart = 256 << 10 // small parts, so small blobs have several

func blobData(n int) []byte { return sha3.SumSHAKE128([]byte("relay blob"), n) }

// natsFor starts a NATS server for a relay, so the test can look at what
// the relay stores.
func natsFor(t testing.TB) (*natsserver.Server, jetstream.JetStream) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return ns, js
}

// rawRequest sends one request to the relay and returns the response with
// its body read.
func rawRequest(t *testing.T, method, url, token string, body io.Reader, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// createRaw reserves a blob over plain HTTP.
func createRaw(t *testing.T, tr *testRelay, size int) server.BlobCreated {
	t.Helper()
	resp, body := rawRequest(t, "POST", tr.url()+"/v1/blobs", "", nil, "Upload-Length", fmt.Sprint(size))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var c server.BlobCreated
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func uploadRaw(t *testing.T, tr *testRelay, c server.BlobCreated, off int, data []byte) *http.Response {
	t.Helper()
	resp, body := rawRequest(t, "PATCH", tr.url()+"/v1/blobs/"+c.ID+"/upload", c.UploadToken, bytes.NewReader(data),
		"Upload-Offset", fmt.Sprint(off))
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusConflict {
		t.Logf("upload: %d %s", resp.StatusCode, body)
	}
	return resp
}

// TestBlobCapabilities: only the download token reads a blob and only the
// upload token writes it; a wrong or missing token, the other token, an
// unknown id and a malformed id are the same 404; nothing lists blobs;
// the relay stores the tokens hashed, and neither a name nor a type.
func TestBlobCapabilities(t *testing.T) {
	ns, js := natsFor(t)
	tr := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1, BlobPartSize: testPart})
	data := blobData(600_000)
	c := createRaw(t, tr, len(data))
	if resp := uploadRaw(t, tr, c, 0, data); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	blobURL := tr.url() + "/v1/blobs/" + c.ID
	if resp, body := rawRequest(t, "GET", blobURL, c.DownloadToken, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("download with the token: %d, %d bytes", resp.StatusCode, len(body))
	}
	other := createRaw(t, tr, 10)
	flipped := []byte(c.DownloadToken)
	flipped[5] ^= 1
	for name, req := range map[string]struct{ method, url, token string }{
		"no token":               {"GET", blobURL, ""},
		"wrong token":            {"GET", blobURL, string(flipped)},
		"the upload token":       {"GET", blobURL, c.UploadToken},
		"another blob's token":   {"GET", blobURL, other.DownloadToken},
		"unknown id":             {"GET", tr.url() + "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA", c.DownloadToken},
		"malformed id":           {"GET", tr.url() + "/v1/blobs/..%2f", c.DownloadToken},
		"offset, download token": {"HEAD", blobURL + "/upload", c.DownloadToken},
		"upload, download token": {"PATCH", blobURL + "/upload", c.DownloadToken},
		"upload, no token":       {"PATCH", blobURL + "/upload", ""},
	} {
		resp, _ := rawRequest(t, req.method, req.url, req.token, strings.NewReader("x"), "Upload-Offset", "0")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", name, resp.StatusCode)
		}
	}
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		if resp, body := rawRequest(t, method, tr.url()+"/v1/blobs", "", nil); resp.StatusCode < 400 || bytes.Contains(body, []byte(c.ID)) {
			t.Errorf("%s /v1/blobs: %d %s", method, resp.StatusCode, body)
		}
	}
	// What NATS holds: the record has hashes only; objects are named by
	// the random id and carry no metadata.
	kv, err := js.KeyValue(context.Background(), server.BlobRecordBucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{c.UploadToken, c.DownloadToken} {
		if bytes.Contains(entry.Value(), []byte(tok)) || strings.Contains(fmt.Sprintf("%x", entry.Value()), tok) {
			t.Fatal("a token is stored in the clear")
		}
	}
	obs, err := js.ObjectStore(context.Background(), server.BlobPartBucket)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := obs.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 { // 600,000 bytes in parts of 256 KiB
		t.Fatalf("%d objects, want 3 parts", len(infos))
	}
	for _, info := range infos {
		if !strings.HasPrefix(info.Name, c.ID+".") || info.Description != "" || len(info.Headers) != 0 || len(info.Metadata) != 0 {
			t.Errorf("object %q carries more than its random name: %+v", info.Name, info.ObjectMeta)
		}
	}
}

// TestBlobSizeLimit: a blob over BlobMaxSize is refused at creation with
// 413 and a message that says why; a body past the blob's size is 413; a
// missing or bad Upload-Length is 400.
func TestBlobSizeLimit(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, BlobMaxSize: 1 << 20, BlobPartSize: testPart})
	_, _, err := tr.client().Blobs().Create(ctx, 1<<20+1)
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge || !strings.Contains(se.Message, "limit") {
		t.Fatalf("over the limit: %v", err)
	}
	if _, _, err := tr.client().Blobs().Create(ctx, 1<<20); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	for _, v := range []string{"", "0", "-5", "abc"} {
		if resp, _ := rawRequest(t, "POST", tr.url()+"/v1/blobs", "", nil, "Upload-Length", v); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Upload-Length %q: %d", v, resp.StatusCode)
		}
	}
	c := createRaw(t, tr, 1000)
	if resp := uploadRaw(t, tr, c, 0, make([]byte, 1001)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body past the size, with Content-Length: %d", resp.StatusCode)
	}
	body := io.MultiReader(bytes.NewReader(make([]byte, 1000)), strings.NewReader("more")) // no Content-Length
	if resp, _ := rawRequest(t, "PATCH", tr.url()+"/v1/blobs/"+c.ID+"/upload", c.UploadToken, body, "Upload-Offset", "0"); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body past the size, chunked: %d", resp.StatusCode)
	}
}

// TestBlobExpiry: a blob is served until BlobMaxAge after its creation,
// then refused (404), and NATS removes its parts and record.
func TestBlobExpiry(t *testing.T) {
	ns, js := natsFor(t)
	tr := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1, BlobMaxAge: 2 * time.Second, BlobPartSize: testPart})
	data := blobData(300_000)
	c := createRaw(t, tr, len(data))
	uploadRaw(t, tr, c, 0, data)
	url := tr.url() + "/v1/blobs/" + c.ID
	if resp, _ := rawRequest(t, "GET", url, c.DownloadToken, nil); resp.StatusCode != 200 {
		t.Fatalf("fresh blob: %d", resp.StatusCode)
	}
	if time.Until(c.Expires) > 3*time.Second {
		t.Fatalf("expires at %v", c.Expires)
	}
	time.Sleep(time.Until(c.Expires) + 100*time.Millisecond)
	if resp, _ := rawRequest(t, "GET", url, c.DownloadToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("expired blob: %d", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, "HEAD", url+"/upload", c.UploadToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("expired blob's upload: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := js.Stream(context.Background(), "OBJ_"+server.BlobPartBucket)
		if err != nil {
			t.Fatal(err)
		}
		k, err := js.Stream(context.Background(), "KV_"+server.BlobRecordBucket)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs == 0 && k.CachedInfo().State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("NATS still holds %d part messages and %d records", s.CachedInfo().State.Msgs, k.CachedInfo().State.Msgs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBlobRange: one-range requests in every form, across parts, as 206
// with Content-Range; the whole blob as 200; bad and unsatisfiable ranges
// as 416; an incomplete blob is 409.
func TestBlobRange(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1, BlobPartSize: testPart})
	const n = 3*testPart + 1000
	data := blobData(n)
	c := createRaw(t, tr, n)
	url := tr.url() + "/v1/blobs/" + c.ID
	if resp, _ := rawRequest(t, "GET", url, c.DownloadToken, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("incomplete blob: %d", resp.StatusCode)
	}
	uploadRaw(t, tr, c, 0, data)
	for _, r := range []struct {
		header     string
		start, end int
	}{
		{"bytes=0-0", 0, 1}, {"bytes=0-9", 0, 10}, {"bytes=5-", 5, n}, {"bytes=-10", n - 10, n},
		{fmt.Sprintf("bytes=%d-%d", testPart-3, testPart+2), testPart - 3, testPart + 3},
		{fmt.Sprintf("bytes=%d-%d", testPart, 3*testPart), testPart, 3*testPart + 1},
		{fmt.Sprintf("bytes=%d-", 3*testPart), 3 * testPart, n},
		{fmt.Sprintf("bytes=%d-%d", n-1, n+100), n - 1, n}, {"bytes=-99999999", 0, n},
	} {
		resp, body := rawRequest(t, "GET", url, c.DownloadToken, nil, "Range", r.header)
		want := fmt.Sprintf("bytes %d-%d/%d", r.start, r.end-1, n)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != want || !bytes.Equal(body, data[r.start:r.end]) {
			t.Errorf("%s: %d %q, %d bytes", r.header, resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
	}
	if resp, body := rawRequest(t, "GET", url, c.DownloadToken, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) ||
		resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("whole blob: %d, %d bytes", resp.StatusCode, len(body))
	}
	for _, h := range []string{fmt.Sprintf("bytes=%d-", n), "bytes=10-5", "bytes=0-1,5-6", "items=0-1", "bytes=-0", "bytes=x-"} {
		if resp, _ := rawRequest(t, "GET", url, c.DownloadToken, nil, "Range", h); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
			t.Errorf("%s: %d", h, resp.StatusCode)
		}
	}
}

// TestBlobResumeProtocol: a body that ends inside a part keeps the whole
// parts before it (Upload-Offset says where), a PATCH at another offset is
// 409 with the right Upload-Offset, HEAD reports it too, and the upload
// finishes from there, also through a relay restart.
func TestBlobResumeProtocol(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1, BlobPartSize: testPart})
	const n = 4*testPart + 77
	data := blobData(n)
	c := createRaw(t, tr, n)
	resp := uploadRaw(t, tr, c, 0, data[:testPart+1000])
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != fmt.Sprint(testPart) {
		t.Fatalf("partial body: %d, offset %s", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	resp = uploadRaw(t, tr, c, testPart+1000, data[testPart+1000:])
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Upload-Offset") != fmt.Sprint(testPart) {
		t.Fatalf("wrong offset: %d, offset %s", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	tr.restart()
	resp, _ = rawRequest(t, "HEAD", tr.url()+"/v1/blobs/"+c.ID+"/upload", c.UploadToken, nil)
	if resp.Header.Get("Upload-Offset") != fmt.Sprint(testPart) || resp.Header.Get("Upload-Length") != fmt.Sprint(n) {
		t.Fatalf("HEAD after a restart: %d %v", resp.StatusCode, resp.Header)
	}
	if resp = uploadRaw(t, tr, c, testPart, data[testPart:3*testPart]); resp.Header.Get("Upload-Offset") != fmt.Sprint(3*testPart) {
		t.Fatalf("whole parts: offset %s", resp.Header.Get("Upload-Offset"))
	}
	if resp = uploadRaw(t, tr, c, 3*testPart, data[3*testPart:]); resp.Header.Get("Upload-Offset") != fmt.Sprint(n) {
		t.Fatalf("the rest: offset %s", resp.Header.Get("Upload-Offset"))
	}
	if resp = uploadRaw(t, tr, c, n, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("empty PATCH at the end: %d", resp.StatusCode)
	}
	if resp, body := rawRequest(t, "GET", tr.url()+"/v1/blobs/"+c.ID, c.DownloadToken, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// cutProxy forwards loopback TCP connections to the relay, and cuts the
// i-th connection after cuts[i] bytes in the direction given (client to
// relay for uploads, relay to client for downloads); later connections
// pass whole.
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	upload bool
	mu     sync.Mutex
	cuts   []int64
	conns  int
}

func newCutProxy(t *testing.T, target string, upload bool, cuts ...int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, upload: upload, cuts: cuts}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

// connections returns how many connections the proxy accepted.
func (p *cutProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := int64(-1)
		if len(p.cuts) > 0 {
			cut, p.cuts = p.cuts[0], p.cuts[1:]
		}
		p.conns++
		p.mu.Unlock()
		go p.forward(c, cut)
	}
}

func (p *cutProxy) forward(c net.Conn, cut int64) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	closeBoth := func() { c.Close(); s.Close() }
	copyCut := func(dst, src net.Conn, limit int64) {
		if limit >= 0 {
			io.CopyN(dst, src, limit)
			closeBoth()
			return
		}
		io.Copy(dst, src)
		closeBoth()
	}
	up, down := cut, int64(-1)
	if !p.upload {
		up, down = -1, cut
	}
	go copyCut(s, c, up)
	copyCut(c, s, down)
}

// TestAttachThroughRelay uploads and downloads files with attach through
// the relay on loopback, with connections cut mid-transfer by a proxy:
// Upload resumes at the offset the relay reports, Download from the last
// verified chunk, and both finish with the pointer's digest. A relay that
// serves another blob under the id is caught (ErrWrongBlob).
func TestAttachThroughRelay(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, BlobPartSize: testPart})
	const n = 5*testPart + 12345
	file := blobData(n)

	upProxy := newCutProxy(t, tr.addr, true, 300_000, 900_000)
	var progress []int64
	p, err := attach.Upload(ctx, client.New(upProxy.url()).Blobs(), bytes.NewReader(file),
		attach.WithRetries(5, 10*time.Millisecond), attach.WithMediaType("application/octet-stream"),
		attach.WithProgress(func(done, _ int64) { progress = append(progress, done) }))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if upProxy.connections() < 3 {
		t.Fatalf("the upload used %d connections: it was not cut", upProxy.connections())
	}
	resumed := false
	for i := 1; i < len(progress); i++ {
		resumed = resumed || progress[i] < progress[i-1]
	}
	if !resumed {
		t.Fatal("progress never went back: the upload did not resume")
	}

	downProxy := newCutProxy(t, tr.addr, false, 200_000, 1_000_000)
	var out bytes.Buffer
	if err := attach.Download(ctx, client.New(downProxy.url()).Blobs(), p, &out, attach.WithRetries(5, 10*time.Millisecond)); err != nil {
		t.Fatalf("download: %v", err)
	}
	if !bytes.Equal(out.Bytes(), file) || downProxy.connections() < 3 {
		t.Fatalf("download: %d bytes, %d connections", out.Len(), downProxy.connections())
	}

	// Another blob under the pointer's id: the relay (or anyone who can
	// change what it serves) swaps in a blob of the same size.
	q, err := attach.Upload(ctx, tr.client().Blobs(), bytes.NewReader(blobData(n)[:n-1]))
	if err != nil {
		t.Fatal(err)
	}
	swapped := *p
	swapped.ID = q.ID
	out.Reset()
	if err := attach.Download(ctx, tr.client().Blobs(), &swapped, &out); !errors.Is(err, attach.ErrWrongBlob) || out.Len() != 0 {
		t.Fatalf("another blob under the id: %v, %d bytes written", err, out.Len())
	}
}

// TestBlobLargeParts: with parts larger than the relay's read-ahead (the
// next part is opened 4 MiB before the current one ends), a whole blob
// and ranges that start before, at and after that point come back whole.
func TestBlobLargeParts(t *testing.T) {
	const part = 5 << 20
	tr := startRelay(t, server.Config{Rate: -1, BlobPartSize: part})
	const n = 2*part + 1234
	data := blobData(n)
	c := createRaw(t, tr, n)
	if resp := uploadRaw(t, tr, c, 0, data); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	url := tr.url() + "/v1/blobs/" + c.ID
	if resp, body := rawRequest(t, "GET", url, c.DownloadToken, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("whole blob: %d, %d bytes", resp.StatusCode, len(body))
	}
	for _, r := range [][2]int{{0, part}, {100, part - 100}, {part - (4 << 20) - 1, part + 10}, {part - 10, 2*part + 5}, {part + (1 << 20), n}} {
		resp, body := rawRequest(t, "GET", url, c.DownloadToken, nil, "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]-1))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[r[0]:r[1]]) {
			t.Errorf("bytes %d-%d: %d, %d bytes", r[0], r[1]-1, resp.StatusCode, len(body))
		}
	}
}

// TestAttachRefusedAtOnce: a download of a blob the relay does not know
// (expired, or a wrong token) ends at the relay's first 404, which the
// client marks permanent, instead of being retried with backoff; so does
// an upload whose token the relay refuses.
func TestAttachRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, BlobPartSize: testPart})
	blobs := tr.client().Blobs()
	p, err := attach.Upload(ctx, blobs, bytes.NewReader(blobData(100_000)))
	if err != nil {
		t.Fatal(err)
	}
	slow := attach.WithRetries(5, time.Second)
	unknown := *p
	unknown.ID = "AAAAAAAAAAAAAAAAAAAAAA.token"
	start := time.Now()
	if err := attach.Download(ctx, blobs, &unknown, io.Discard, slow); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("unknown blob: %v", err)
	}
	took := time.Since(start)
	var saved []byte
	cut := newCutProxy(t, tr.addr, true, 50_000)
	if _, err := attach.Upload(ctx, client.New(cut.url()).Blobs(), bytes.NewReader(blobData(600_000)), attach.WithRetries(0, 0),
		attach.WithUploadState(func(st []byte) { saved = st })); err == nil {
		t.Fatal("the cut upload succeeded")
	}
	// The saved state with another upload token: the relay refuses it.
	i := 19 + bytes.IndexByte(saved[19:], '.') // the upload handle "<id>.<upload token>" follows version, nonce and its length (docs/SPEC.md section 21.9)
	saved[i+1] ^= 1
	start = time.Now()
	if _, err := attach.ResumeUpload(ctx, blobs, saved, bytes.NewReader(blobData(600_000)), slow); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("a wrong upload token: %v", err)
	}
	if took += time.Since(start); took > 900*time.Millisecond { // a retry waits 1 s first
		t.Fatalf("the refusals took %v: they were retried", took)
	}
}

// TestAttachResumeAfterRestart: an upload and a download through the
// relay are cut, and their processes end; ResumeUpload with the saved
// state and ResumeDownload into the partial file finish them, after a
// relay restart too.
func TestAttachResumeAfterRestart(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, BlobPartSize: testPart})
	const n = 5*testPart + 999
	file := blobData(n)
	var saved []byte
	upCut := newCutProxy(t, tr.addr, true, 700_000)
	if _, err := attach.Upload(ctx, client.New(upCut.url()).Blobs(), bytes.NewReader(file), attach.WithRetries(0, 0),
		attach.WithUploadState(func(st []byte) { saved = st })); err == nil {
		t.Fatal("the cut upload succeeded")
	}
	tr.restart()
	p, err := attach.ResumeUpload(ctx, tr.client().Blobs(), saved, bytes.NewReader(file))
	if err != nil {
		t.Fatalf("ResumeUpload: %v", err)
	}
	downCut := newCutProxy(t, tr.addr, false, 400_000)
	var partial bytes.Buffer
	if err := attach.Download(ctx, client.New(downCut.url()).Blobs(), p, &partial, attach.WithRetries(0, 0)); err == nil {
		t.Fatal("the cut download succeeded")
	}
	if partial.Len() == 0 {
		t.Fatal("the cut download wrote nothing")
	}
	tr.restart()
	var rest bytes.Buffer
	if err := attach.ResumeDownload(ctx, tr.client().Blobs(), p, bytes.NewReader(partial.Bytes()), &rest); err != nil {
		t.Fatalf("ResumeDownload: %v", err)
	}
	if !bytes.Equal(append(partial.Bytes(), rest.Bytes()...), file) {
		t.Fatal("the resumed download is not the file")
	}
}
