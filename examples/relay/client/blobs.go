package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// BlobStore is the relay's blob store (server package, "Blobs") as an
// attach.BlobStore: pass it to attach.Upload and attach.Download. It
// imports nothing of attach (the interface has standard types only), so
// the client stays as safe to link as the relay.
//
// The ids it returns are capabilities: Create's id is "<blob id>.<download
// token>", everything a recipient needs to Get the blob (it goes into the
// attach.Pointer, inside a sealed message); its upload handle is "<blob
// id>.<upload token>". Tokens travel in the Authorization header, never in
// a URL. Transfers are bounded by their context, not by the client's
// Timeout, which would cut a large blob short. The relay's refusals (see
// refusal) are marked permanent, so attach does not retry them.
type BlobStore struct {
	base string
	hc   *http.Client
}

// Blobs returns the relay's blob store.
func (c *Client) Blobs() *BlobStore {
	hc := *c.hc
	hc.Timeout = 0
	return &BlobStore{base: c.base, hc: &hc}
}

// Create reserves a blob of size bytes. A blob over the relay's size limit
// is a StatusError with code 413.
func (b *BlobStore) Create(ctx context.Context, size int64) (id, upload string, err error) {
	resp, err := b.do(ctx, http.MethodPost, "/v1/blobs", "", nil, http.StatusCreated,
		map[string]string{"Upload-Length": strconv.FormatInt(size, 10)})
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var created struct {
		ID            string `json:"id"`
		UploadToken   string `json:"upload_token"`
		DownloadToken string `json:"download_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&created); err != nil {
		return "", "", fmt.Errorf("relay: blob answer: %w", err)
	}
	return created.ID + "." + created.DownloadToken, created.ID + "." + created.UploadToken, nil
}

// errShort reports a PATCH the relay answered with less stored than sent.
var errShort = errors.New("relay: stored less than was sent")

// Put streams r to the blob at offset off (which must be the relay's
// offset). On an error, Offset tells what the relay kept: whole parts.
func (b *BlobStore) Put(ctx context.Context, upload string, off int64, r io.Reader) error {
	id, tok, err := splitCapability(upload)
	if err != nil {
		return err
	}
	body := &bodyGuard{r: r}
	defer body.stop() // r is the caller's again once Put returns
	resp, err := b.do(ctx, http.MethodPatch, "/v1/blobs/"+id+"/upload", tok, body, http.StatusNoContent,
		map[string]string{"Upload-Offset": strconv.FormatInt(off, 10), "Content-Type": "application/offset+octet-stream"})
	sent := body.stop()
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if got, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64); err != nil || got != off+sent {
		return fmt.Errorf("%w: at %s of %d", errShort, resp.Header.Get("Upload-Offset"), off+sent)
	}
	return nil
}

// Offset returns how many bytes of the blob the relay holds.
func (b *BlobStore) Offset(ctx context.Context, upload string) (int64, error) {
	id, tok, err := splitCapability(upload)
	if err != nil {
		return 0, err
	}
	resp, err := b.do(ctx, http.MethodHead, "/v1/blobs/"+id+"/upload", tok, nil, http.StatusNoContent, nil)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// Get returns n bytes of the blob from offset off, as one range request.
// A body that ends early reads as io.ErrUnexpectedEOF.
func (b *BlobStore) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	blob, tok, err := splitCapability(id)
	if err != nil {
		return nil, err
	}
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("relay: bad range %d+%d", off, n)
	}
	resp, err := b.do(ctx, http.MethodGet, "/v1/blobs/"+blob, tok, nil, http.StatusPartialContent,
		map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+n-1)})
	if err != nil {
		return nil, err
	}
	if resp.ContentLength != n {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("relay: range of %d bytes, asked for %d", resp.ContentLength, n)
	}
	return resp.Body, nil
}

func (b *BlobStore) do(ctx context.Context, method, path, token string, body io.Reader, want int, headers map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		err := statusError(resp)
		if refusal(method, resp.StatusCode) {
			err = permanentError{err}
		}
		return nil, err
	}
	return resp, nil
}

// refusal reports whether an answer is the relay's refusal, which no
// retry mends: a 4xx but 408 (Request Timeout) and 429 (Too Many
// Requests), and but a 409 to a PATCH (the relay holds another offset:
// attach.Upload asks it and resumes from there). A 404 (no such blob, or
// not this token; expired), a 413 (over the size limit) and a 409 to a
// GET (the upload is not complete) are refusals.
func refusal(method string, code int) bool {
	switch {
	case code < 400 || code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return false
	case code == http.StatusConflict && method == http.MethodPatch:
		return false
	}
	return true
}

// permanentError marks a refusal for attach.Upload and attach.Download,
// which give up at once on an error with a Permanent method that returns
// true (attach.ErrPermanent's doc) instead of retrying it with backoff; the
// client cannot wrap attach.ErrPermanent itself, as it does not import
// attach. The StatusError stays in the chain (errors.As, IsStatus).
type permanentError struct{ err error }

func (p permanentError) Error() string   { return p.err.Error() }
func (p permanentError) Unwrap() error   { return p.err }
func (p permanentError) Permanent() bool { return true }

// splitCapability splits "<blob id>.<token>".
func splitCapability(c string) (id, token string, err error) {
	id, token, ok := strings.Cut(c, ".")
	if !ok || id == "" || token == "" {
		return "", "", errors.New("relay: not a blob capability")
	}
	return id, token, nil
}

// errPutOver is what a request body reads as once Put has returned.
var errPutOver = errors.New("relay: the upload is over")

// bodyGuard is Put's request body: it counts the bytes it yields and stops
// reading r the moment Put returns. net/http may go on reading a request
// body in the transport's write goroutine after Client.Do returned (the
// relay answered, or the connection broke, before the whole body was
// written; see http.RoundTripper), while the caller of Put already reads r
// again: attach.Upload rewinds and re-reads its encrypting reader to resume
// at the relay's offset. Without the guard both goroutines read it at once
// (the race TestAttachThroughRelay showed under -race), corrupting the blob
// digest the resumed upload computes.
type bodyGuard struct {
	mu   sync.Mutex
	r    io.Reader
	n    int64
	done bool
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return 0, errPutOver
	}
	k, err := g.r.Read(p)
	g.n += int64(k)
	return k, err
}

// WriteTo sends the body in writes of up to 256 KiB. net/http's transport
// copies a request body with io.Copy, which uses it: otherwise every 32
// KiB of its copy buffer would be a chunk of its own and a write to the
// connection or two. It reads r through Read, so the guard holds.
func (g *bodyGuard) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := io.ReadFull(g, buf)
		if n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// stop waits for a Read in progress to end, makes every later Read fail
// without touching r, and returns how many bytes were read from r.
func (g *bodyGuard) stop() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	return g.n
}
