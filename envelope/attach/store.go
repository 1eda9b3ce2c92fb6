package attach

import (
	"context"
	"io"
	"time"
)

// BlobStore is where Upload puts blobs and Download gets them: a relay's
// blob store, or any other. The store sees only encrypted blobs, their
// sizes and the times they move. Its methods use standard types only, so
// a store's client need not import this package.
//
// Upload and Download retry a failed call (WithRetries), but not an error
// the store marks permanent: one that wraps ErrPermanent, or that has a
// method Permanent() bool returning true anywhere in its chain (for a
// store's client that does not import this package; the relay's client
// marks its 4xx refusals so). A 404 or a 413 is permanent; a lost
// connection, a timeout or a 5xx is not.
type BlobStore interface {
	// Create reserves a blob of exactly size bytes and returns its id and
	// an upload handle. The id is what a Pointer carries: all that is
	// needed to Get the blob, so it must be an unguessable capability of
	// Pointer.ID's characters. The upload handle is the uploader's own
	// capability to write the blob.
	Create(ctx context.Context, size int64) (id, upload string, err error)
	// Put writes the bytes r yields, until r's EOF, to the blob of the
	// upload handle from offset off, which must be the store's current
	// offset for it (0 for a new blob). When it returns an error the store
	// may have kept a prefix of what it read; Offset tells how much. The
	// blob can be read once all size bytes are stored.
	//
	// Put must not read r once it has returned, nor from two goroutines at
	// once: the caller reads r again to resume. Mind net/http, whose
	// transport may go on reading a request body in its own goroutine
	// after Client.Do returned (see http.RoundTripper); stop reading r
	// before Put returns. The reader Upload passes refuses such reads with
	// ErrReadAfterPut.
	Put(ctx context.Context, upload string, off int64, r io.Reader) error
	// Offset returns how many bytes of the blob the store holds.
	Offset(ctx context.Context, upload string) (int64, error)
	// Get returns n bytes of the complete blob id from offset off. A
	// reader that ends early or fails is resumed with another Get.
	Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error)
}

// Option configures Upload or Download.
type Option func(*options)

type options struct {
	progress  func(done, total int64)
	state     func(state []byte)
	length    int64 // -1: ask the reader
	mediaType string
	name      string
	retries   int
	backoff   time.Duration
}

func newOptions(opts []Option) options {
	o := options{length: -1, retries: DefaultRetries, backoff: 200 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// DefaultRetries is how many times Upload and Download resume a transfer
// that failed before they give up: enough for a few dropped connections
// on a mobile network, few enough that a store that is down fails fast.
const DefaultRetries = 5

// WithProgress makes Upload and Download call f as the transfer goes:
// done is how many blob bytes have been handed to the store or received
// and verified, total the blob's size. After a resumption done starts
// again from where the store is.
func WithProgress(f func(done, total int64)) Option { return func(o *options) { o.progress = f } }

// WithUploadState makes Upload call f once, after the store created the
// blob and before the first Put, with what ResumeUpload needs to go on
// with the upload in another process: the app saves it (for example next
// to the file's path) until Upload returns nil, and passes it to
// ResumeUpload after a restart. It is secret: it holds the file key and
// the store's upload handle. Its bytes are a local format (docs/SPEC.md
// section 21.9), not for the wire.
func WithUploadState(f func(state []byte)) Option { return func(o *options) { o.state = f } }

// WithLength gives Upload the file's length when r cannot tell it (r has no
// Len, Stat or Seek method). r must yield exactly n bytes.
func WithLength(n int64) Option { return func(o *options) { o.length = n } }

// WithMediaType sets the Pointer's media type (Upload only).
func WithMediaType(t string) Option { return func(o *options) { o.mediaType = t } }

// WithName sets the Pointer's file name (Upload only; see ValidName).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithRetries sets how many times a failed transfer is resumed
// (DefaultRetries), waiting backoff before the first retry and twice as
// long before each next one, at most 10 s.
func WithRetries(n int, backoff time.Duration) Option {
	return func(o *options) { o.retries, o.backoff = n, backoff }
}

// wait sleeps before retry number attempt (from 0), or returns ctx's error.
func (o *options) wait(ctx context.Context, attempt int) error {
	d := min(o.backoff<<min(attempt, 16), 10*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *options) report(done, total int64) {
	if o.progress != nil {
		o.progress(done, total)
	}
}
