package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Blob store defaults, each with its reason.
const (
	// DefaultBlobMaxAge is how long a blob is kept from its creation: 30
	// days, as Signal keeps attachments, long enough for a device that was
	// off for weeks.
	DefaultBlobMaxAge = 30 * 24 * time.Hour
	// DefaultBlobMaxSize bounds one blob: 2 GiB of encrypted bytes, a long
	// video; attach pads by at most 5%, so a file of up to ~1.9 GiB.
	DefaultBlobMaxSize = 2 << 30
	// DefaultBlobPartSize is the size of the parts a blob is stored in, one
	// NATS object each. An interrupted upload loses at most one part, and a
	// range request reads at most one part it does not need; 8 MiB parts
	// keep both small while a 2 GiB blob is 256 objects.
	DefaultBlobPartSize = 8 << 20
	// blobIOTimeout bounds the time one part may take to arrive or leave.
	blobIOTimeout = 2 * time.Minute
)

// NATS names of the blob store: a key-value bucket of blob records and an
// object store of blob parts.
const (
	BlobRecordBucket = "SEALPOST_BLOBS"
	BlobPartBucket   = "SEALPOST_BLOB_PARTS"
)

// blobRecord is what the relay keeps about a blob besides its bytes: no
// name, no type, no owner. Tokens are kept as SHA-256 hashes only (they
// are 256-bit random values, so a plain hash cannot be inverted).
type blobRecord struct {
	Size     int64     `json:"size"`
	PartSize int64     `json:"part_size"`
	Stored   int64     `json:"stored"` // bytes in whole parts; Size once complete
	Expires  time.Time `json:"expires"`
	Upload   []byte    `json:"upload"`
	Download []byte    `json:"download"`
}

// BlobCreated is the answer to POST /v1/blobs: the blob's id and its two
// capabilities, handed out once.
type BlobCreated struct {
	ID            string    `json:"id"`
	UploadToken   string    `json:"upload_token"`
	DownloadToken string    `json:"download_token"`
	Expires       time.Time `json:"expires"`
}

// HTTP headers of the blob API.
const (
	UploadLengthHeader = "Upload-Length"
	UploadOffsetHeader = "Upload-Offset"
)

func (r *Relay) setupBlobs(ctx context.Context) error {
	var err error
	r.blobRecs, err = r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BlobRecordBucket,
		Description: "sealpost blob records: size, stored bytes, expiry, token hashes",
		TTL:         r.cfg.BlobMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.Replicas,
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("relay: bucket %s: %w", BlobRecordBucket, err)
	}
	r.blobParts, err = r.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BlobPartBucket,
		Description: "sealpost blob parts: encrypted bytes under random names",
		TTL:         r.cfg.BlobMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("relay: object store %s: %w", BlobPartBucket, err)
	}
	return nil
}

// randomToken returns n random bytes in unpadded base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func partName(id string, part int64) string { return id + "." + strconv.FormatInt(part, 10) }

// createBlob reserves a blob of Upload-Length bytes.
func (r *Relay) createBlob(w http.ResponseWriter, req *http.Request) {
	size, err := strconv.ParseInt(req.Header.Get(UploadLengthHeader), 10, 64)
	if err != nil || size < 1 {
		httpError(w, http.StatusBadRequest, "Upload-Length must be the blob's size in bytes")
		return
	}
	if size > r.cfg.BlobMaxSize {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("blob of %d bytes over the relay's limit of %d", size, r.cfg.BlobMaxSize))
		return
	}
	created := BlobCreated{UploadToken: randomToken(32), DownloadToken: randomToken(32),
		Expires: time.Now().Add(r.cfg.BlobMaxAge).UTC().Truncate(time.Second)}
	rec, _ := json.Marshal(blobRecord{Size: size, PartSize: r.cfg.BlobPartSize, Expires: created.Expires,
		Upload: tokenHash(created.UploadToken), Download: tokenHash(created.DownloadToken)})
	for range 3 { // 128-bit ids do not collide; the loop is for the proof
		created.ID = randomToken(16)
		if _, err = r.blobRecs.Create(req.Context(), created.ID, rec); !errors.Is(err, jetstream.ErrKeyExists) {
			break
		}
	}
	if err != nil {
		r.storeError(w, "creating a blob", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(created)
}

// blobFor returns the record of the blob in the path if the request's
// bearer token is its upload (or download) token. Every refusal (no such
// id, wrong token, expired) is the same 404, so the API tells nothing to
// whoever lacks the capability.
func (r *Relay) blobFor(w http.ResponseWriter, req *http.Request, upload bool) (string, *blobRecord, uint64, bool) {
	id := req.PathValue("id")
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || len(id) != 22 || strings.ContainsFunc(id, func(c rune) bool { return !isBase64URL(c) }) {
		httpError(w, http.StatusNotFound, "no such blob")
		return "", nil, 0, false
	}
	entry, err := r.blobRecs.Get(req.Context(), id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		httpError(w, http.StatusNotFound, "no such blob")
		return "", nil, 0, false
	} else if err != nil {
		r.storeError(w, "reading a blob record", err)
		return "", nil, 0, false
	}
	var rec blobRecord
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		r.storeError(w, "decoding a blob record", err)
		return "", nil, 0, false
	}
	want := rec.Download
	if upload {
		want = rec.Upload
	}
	if subtle.ConstantTimeCompare(tokenHash(tok), want) != 1 || time.Now().After(rec.Expires) {
		httpError(w, http.StatusNotFound, "no such blob")
		return "", nil, 0, false
	}
	return id, &rec, entry.Revision(), true
}

func isBase64URL(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// blobOffset answers HEAD /v1/blobs/{id}/upload: how much is stored.
func (r *Relay) blobOffset(w http.ResponseWriter, req *http.Request) {
	_, rec, _, ok := r.blobFor(w, req, true)
	if !ok {
		return
	}
	w.Header().Set(UploadOffsetHeader, strconv.FormatInt(rec.Stored, 10))
	w.Header().Set(UploadLengthHeader, strconv.FormatInt(rec.Size, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// blobChunk is the size of the NATS messages a part is stored in: 256
// KiB, twice the Object Store's default, so that storing and serving a
// blob costs half as many messages (each with its headers, delivery and
// flow control in NATS, its parse in the client), while a request still
// holds one buffer of 256 KiB (an upload's part is read into one chunk at
// a time).
const blobChunk = 256 << 10

// blobChunkSize is blobChunk, or less if the NATS server takes no message
// that large (its max_payload, 1 MiB by default), with room for the
// headers.
func (r *Relay) blobChunkSize() uint32 {
	return uint32(max(4<<10, min(blobChunk, r.nc.MaxPayload()-4<<10)))
}

// errNoBody marks a part that received no byte at all: the body ended at a
// part boundary.
var errNoBody = errors.New("relay: request body ended")

// exactReader yields exactly n bytes of r, then io.EOF; if r ends first it
// fails (so the object store drops the part instead of keeping it short).
type exactReader struct {
	r    io.Reader
	n    int64
	read int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	// Fill p (the object store makes one message of each Read): an HTTP
	// body yields a few KiB at a time, which would make small messages.
	k, err := io.ReadFull(e.r, p)
	e.n, e.read = e.n-int64(k), e.read+int64(k)
	switch {
	case err == nil && e.n == 0:
		return k, io.EOF
	case err == nil:
		return k, nil
	case errors.Is(err, io.EOF) && e.read == 0:
		e.err = errNoBody
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		e.err = io.ErrUnexpectedEOF
	default:
		e.err = err
	}
	return k, e.err
}

// patchBlob appends the request body to the blob at Upload-Offset, which
// must be what the relay holds. The body is stored in whole parts as it
// arrives; a part the body ends inside (a dropped connection) is thrown
// away, and the answer's Upload-Offset says where to go on from.
func (r *Relay) patchBlob(w http.ResponseWriter, req *http.Request) {
	id, rec, rev, ok := r.blobFor(w, req, true)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	off, err := strconv.ParseInt(req.Header.Get(UploadOffsetHeader), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "Upload-Offset must be a byte offset")
		return
	}
	if off != rec.Stored {
		w.Header().Set(UploadOffsetHeader, strconv.FormatInt(rec.Stored, 10))
		httpError(w, http.StatusConflict, "Upload-Offset is not the blob's offset")
		return
	}
	if req.ContentLength > rec.Size-rec.Stored {
		httpError(w, http.StatusRequestEntityTooLarge, "body past the blob's size")
		return
	}
	body := http.MaxBytesReader(w, req.Body, rec.Size-rec.Stored)
	rc := http.NewResponseController(w)
	for rec.Stored < rec.Size {
		part := rec.Stored / rec.PartSize
		n := min(rec.PartSize, rec.Size-part*rec.PartSize)
		_ = rc.SetReadDeadline(time.Now().Add(blobIOTimeout))
		er := &exactReader{r: body, n: n}
		meta := jetstream.ObjectMeta{Name: partName(id, part), Opts: &jetstream.ObjectMetaOptions{ChunkSize: r.blobChunkSize()}}
		if _, err := r.blobParts.Put(req.Context(), meta, er); err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(er.err, &tooBig):
				httpError(w, http.StatusRequestEntityTooLarge, "body past the blob's size")
				return
			case er.err != nil: // the body ended: keep what is whole
				r.answerOffset(w, rec.Stored)
				return
			}
			r.storeError(w, "storing a blob part", err)
			return
		}
		rec.Stored += n
		raw, _ := json.Marshal(rec)
		if rev, err = r.blobRecs.Update(req.Context(), id, raw, rev); err != nil {
			r.log.Warn("updating a blob record (a concurrent upload?)", "err", err)
			httpError(w, http.StatusConflict, "the blob changed during the upload")
			return
		}
	}
	var tooBig *http.MaxBytesError
	if _, err := body.Read(make([]byte, 1)); errors.As(err, &tooBig) {
		httpError(w, http.StatusRequestEntityTooLarge, "body past the blob's size")
		return
	}
	r.answerOffset(w, rec.Stored)
}

func (r *Relay) answerOffset(w http.ResponseWriter, off int64) {
	w.Header().Set(UploadOffsetHeader, strconv.FormatInt(off, 10))
	w.WriteHeader(http.StatusNoContent)
}

// getBlob streams a complete blob, or the one byte range asked for.
func (r *Relay) getBlob(w http.ResponseWriter, req *http.Request) {
	id, rec, _, ok := r.blobFor(w, req, false)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rec.Stored != rec.Size {
		httpError(w, http.StatusConflict, "the blob's upload is not complete")
		return
	}
	start, end, partial, ok := parseRange(req.Header.Get("Range"), rec.Size)
	if !ok {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(rec.Size, 10))
		httpError(w, http.StatusRequestedRangeNotSatisfiable, "unsatisfiable range")
		return
	}
	first, err := r.openPart(req.Context(), id, rec, start)
	if err != nil {
		r.storeError(w, "reading a blob part", err)
		return
	}
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	code := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, rec.Size))
		code = http.StatusPartialContent
	}
	w.WriteHeader(code)
	if req.Method == http.MethodHead {
		_ = first.Close()
		return
	}
	if err := r.streamParts(w, req.Context(), id, rec, start, end, first); err != nil {
		r.log.Warn("streaming a blob", "err", err) // the client sees a short body
	}
}

// openPart opens the part holding byte off, positioned at off.
func (r *Relay) openPart(ctx context.Context, id string, rec *blobRecord, off int64) (io.ReadCloser, error) {
	part := off / rec.PartSize
	obj, err := r.blobParts.Get(ctx, partName(id, part))
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, obj, off-part*rec.PartSize); err != nil {
		_ = obj.Close()
		return nil, err
	}
	return obj, nil
}

// prefetchLead is how many bytes before the end of a part the next part is
// opened. Opening a part (its info, then an ordered consumer) took about 5
// ms before the first byte on a 2-vCPU machine, a quarter of the time an
// 8 MiB part takes to stream; opened this far ahead, the next part is
// ready when the current one ends. NATS may push the next part into the
// subscription's buffer meanwhile, so a download holds at most one part
// ahead besides its 256 KiB buffer.
const prefetchLead = 4 << 20

// openedPart is a part opened ahead.
type openedPart struct {
	rc  io.ReadCloser
	err error
}

// streamParts copies the blob's bytes [start, end) to w, part by part,
// each in writes of 256 KiB (so the loopback or network sees few large
// writes, not one per object chunk), opening the next part before the
// current one ends (prefetchLead).
func (r *Relay) streamParts(w http.ResponseWriter, ctx context.Context, id string, rec *blobRecord, start, end int64, obj io.ReadCloser) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10) // two object chunks (128 KiB) a write
	var next chan openedPart
	defer func() {
		if obj != nil {
			_ = obj.Close()
		}
		if next != nil { // a part opened ahead and not needed
			go func(c chan openedPart) {
				if o := <-c; o.rc != nil {
					_ = o.rc.Close()
				}
			}(next)
		}
	}()
	for off := start; off < end; {
		if obj == nil {
			o := <-next // opened ahead, see below
			next = nil
			if o.err != nil {
				return o.err
			}
			obj = o.rc
		}
		_ = rc.SetWriteDeadline(time.Now().Add(blobIOTimeout))
		partEnd := min(end, (off/rec.PartSize+1)*rec.PartSize)
		for off < partEnd {
			k := min(int64(len(buf)), partEnd-off)
			if next == nil && partEnd < end {
				if left := partEnd - off; left <= prefetchLead {
					next = make(chan openedPart, 1)
					go func(c chan openedPart, at int64) {
						part, err := r.openPart(ctx, id, rec, at)
						c <- openedPart{part, err}
					}(next, partEnd)
				} else {
					k = min(k, left-prefetchLead)
				}
			}
			n, err := io.ReadFull(obj, buf[:k])
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					return err
				}
			}
			off += int64(n)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return err
			}
		}
		_ = obj.Close()
		obj = nil
	}
	return nil
}

// parseRange parses a Range header of one range ("bytes=a-b", "bytes=a-",
// "bytes=-n") into [start, end). No header is the whole blob.
func parseRange(h string, size int64) (start, end int64, partial, ok bool) {
	if h == "" {
		return 0, size, false, true
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	if a == "" { // the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, false
		}
		return max(0, size-n), size, true, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false, false
	}
	end = size
	if b != "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < start {
			return 0, 0, false, false
		}
		end = min(size, last+1)
	}
	return start, end, true, true
}
