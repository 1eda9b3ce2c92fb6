package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
)

// Files: /send encrypts a file with envelope/attach into a blob, uploads it
// to the relay's blob store and sends a message that carries the blob's
// pointer (Device.Send's attachments, the content's field 14 `attachments`
// in proto/sealedpb/content.proto): the blob's id, the file's key, length
// and digest, its media type and name. The relay stores only
// the padded, encrypted blob; it never learns the name, the type, the key
// or who the file is for. /save downloads the blob, checks every chunk and
// the digest and writes the file under its final name only once all of it
// checked out.

// defaultMaxFile bounds the files /send uploads (-max-file): far below the
// relay's 2 GiB, so that a mistyped path to a disk image is refused at
// once rather than after minutes of upload.
const defaultMaxFile = 100 << 20

// progressEvery is the least time between two redraws of a progress bar:
// ten a second is smooth to the eye and a handful of writes to a terminal.
const progressEvery = 100 * time.Millisecond

// sendFile is /send: upload the file at path with a progress bar, then
// send user a message that carries it.
func (a *app) sendFile(ctx context.Context, user, path string) {
	if _, ok := a.hist.contact(user); !ok && !a.hasList(ctx, user) {
		a.out.printf("! unknown contact %q: /add it first", user)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		a.out.printf("! /send: %s", fileError(path, err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		a.out.printf("! /send: %s", fileError(path, err))
		return
	}
	if !fi.Mode().IsRegular() {
		a.out.printf("! /send: %s is not a regular file", path)
		return
	}
	if fi.Size() > a.maxFile {
		a.out.printf("! /send: %s is %s, over the limit of %s (-max-file)", path, sizeText(fi.Size()), sizeText(a.maxFile))
		return
	}
	name := filepath.Base(path)
	if !attach.ValidName(name) {
		name = "" // the receiver picks a name
	}
	bar := a.newBar("↑ " + displayName(name) + " to " + user)
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := attach.Upload(uctx, refusals{a.blobs, cancel}, f, attach.WithName(name), attach.WithMediaType(mediaType(name)),
		attach.WithProgress(bar.update))
	bar.finish(err == nil)
	if err != nil {
		a.out.printf("! /send: %s", uploadError(err))
		return
	}

	m := a.seal(ctx, user, "", []*attach.Pointer{p})
	if m == nil {
		a.out.printf("! the file stays on the relay unused")
		return
	}
	blob, _ := attach.EncryptedSize(p.Length)
	a.out.printf("uploaded %s as a %d-byte encrypted blob; sending it to %s", m.Files[0], blob, user)
}

// saveFile is /save: download file n, check and decrypt it into a
// temporary file beside path, and give it path's name only once the whole
// file checked out. On any failure the temporary file is removed: nothing
// is left at path.
func (a *app) saveFile(ctx context.Context, nText, path string) {
	n, err := strconv.ParseUint(nText, 10, 64)
	if err != nil || path == "" {
		a.out.printf("! usage: /save <n> <path> (n from /history)")
		return
	}
	p, err := a.hist.file(n)
	if err != nil {
		a.out.printf("! /save: %v", err)
		return
	}
	dst := path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		dst = filepath.Join(path, safeName(p.Name, n))
	}
	if _, err := os.Lstat(dst); err == nil {
		a.out.printf("! /save: %s exists: choose another path", dst)
		return
	}
	dir := filepath.Dir(dst)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		a.out.printf("! /save: no directory %s: nothing saved", dir)
		return
	}
	tmp, err := os.CreateTemp(dir, ".sealpost-*.part")
	if err != nil {
		a.out.printf("! /save: %s: nothing saved", fileError(dir, err))
		return
	}
	bar := a.newBar("↓ " + displayName(p.Name) + " to " + dst)
	w := bufio.NewWriterSize(tmp, attach.ChunkSize)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = attach.Download(dctx, refusals{a.blobs, cancel}, p, w, attach.WithProgress(bar.update))
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp.Name(), dst)
	}
	bar.finish(err == nil)
	if err != nil {
		if rerr := os.Remove(tmp.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			a.out.printf("! /save: could not remove %s: %v", tmp.Name(), rerr)
		}
		a.out.printf("! /save: %s: nothing saved", downloadError(err))
		return
	}
	a.out.printf("saved file %d to %s: %d bytes, every chunk and the digest checked", n, dst, p.Length)
}

// refusals ends a transfer at the relay's first refusal. attach retries
// every error of the store (but its own: ErrWrongBlob, ErrDecrypt) with
// backoff, about 6 s in all by default, which a lost connection deserves
// but a 404 (the blob expired, or the token is wrong) does not: on a 4xx
// answer other than 408 and 429 (and 409 to a Put, the relay's "resume at
// another offset", which Upload handles) this cancels the transfer's
// context, and Upload or Download returns that answer at once.
type refusals struct {
	attach.BlobStore
	cancel context.CancelFunc
}

func (r refusals) Put(ctx context.Context, upload string, off int64, rd io.Reader) error {
	err := r.BlobStore.Put(ctx, upload, off, rd)
	if !client.IsStatus(err, http.StatusConflict) {
		r.check(err)
	}
	return err
}

func (r refusals) Offset(ctx context.Context, upload string) (int64, error) {
	off, err := r.BlobStore.Offset(ctx, upload)
	r.check(err)
	return off, err
}

func (r refusals) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	rc, err := r.BlobStore.Get(ctx, id, off, n)
	r.check(err)
	return rc, err
}

func (r refusals) check(err error) {
	var se *client.StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests {
		r.cancel()
	}
}

// place gives the finished file tmp the name dst, never replacing a file
// that appeared at dst meanwhile: a hard link fails if dst exists. Where
// the file system has no hard links, a rename does.
func place(tmp, dst string) error {
	err := os.Link(tmp, dst)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists", dst)
	}
	if err != nil {
		return os.Rename(tmp, dst)
	}
	return os.Remove(tmp)
}

// mediaType guesses the media type from the name's extension.
func mediaType(name string) string {
	t := mime.TypeByExtension(filepath.Ext(name))
	if t == "" || len(t) > attach.MaxMediaTypeLength || strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return "application/octet-stream"
	}
	return t
}

func fileError(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file: " + path
	case errors.Is(err, fs.ErrPermission):
		return "permission denied: " + path
	}
	return oneLine(err.Error())
}

func uploadError(err error) string {
	var se *client.StatusError
	switch {
	case errors.Is(err, context.Canceled):
		return "the upload was cancelled"
	case client.IsStatus(err, http.StatusRequestEntityTooLarge):
		errors.As(err, &se)
		return "the relay refused the file as too large: " + oneLine(se.Message)
	case errors.As(err, &se):
		return "the relay refused the upload: " + oneLine(se.Error())
	}
	return "uploading: " + oneLine(err.Error())
}

func downloadError(err error) string {
	var se *client.StatusError
	switch {
	case errors.Is(err, attach.ErrWrongBlob):
		return "the relay served another blob than the message names (digest mismatch)"
	case errors.Is(err, attach.ErrDecrypt):
		return "the file failed authentication: the blob was tampered with or is corrupt"
	case errors.Is(err, attach.ErrTruncated):
		return "the blob ended early"
	case errors.Is(err, attach.ErrMalformed):
		return "the blob is malformed"
	case client.IsStatus(err, http.StatusNotFound):
		return "the relay does not have the file (expired, or never completely uploaded)"
	case errors.As(err, &se):
		return "the relay refused the download: " + oneLine(se.Error())
	case errors.Is(err, context.Canceled):
		return "the download was cancelled"
	}
	return "downloading: " + oneLine(err.Error())
}

// oneLine folds an error text that might hold newlines (a relay's answer)
// into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// displayName shows a sender's file name. attach.ValidName keeps control,
// format (such as U+202E, right-to-left override, which would make
// "gpj.exe" look like "exe.jpg") and separator characters out of a pointer
// already; displayName replaces any that reach it anyway with '_', so the
// terminal never renders one.
func displayName(name string) string {
	if name == "" {
		return "(no name)"
	}
	return graphic(name)
}

// safeName is the name /save gives file n in a folder: the sender's name
// with what displayName replaces replaced, and no leading dot (a sender
// must not plant a hidden file such as .profile); file-n without a name.
func safeName(name string, n uint64) string {
	name = graphic(name)
	if rest := strings.TrimLeft(name, "."); rest != name {
		name = strings.Repeat("_", len(name)-len(rest)) + rest
	}
	if name == "" {
		return fmt.Sprintf("file-%d", n)
	}
	return name
}

func graphic(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsGraphic(r) {
			return r
		}
		return '_'
	}, s)
}

// sizeText prints a size for people, with the exact byte count.
func sizeText(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d bytes", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/k, n)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(k*k), n)
	}
	return fmt.Sprintf("%.1f GiB (%d bytes)", float64(n)/(k*k*k), n)
}

// progressBar is one transfer's progress line, redrawn in place (\r) at
// most every progressEvery and only when the percentage moved. attach
// calls update from whichever goroutine moves the bytes (for an upload,
// net/http's), hence the mutex.
type progressBar struct {
	mu    sync.Mutex
	out   *printer
	label string
	now   func() time.Time
	last  time.Time
	pct   int // the percentage drawn last, -1 before the first draw
	done  int64
	total int64
	draws int
}

func (a *app) newBar(label string) *progressBar {
	return &progressBar{out: a.out, label: label, now: a.now, pct: -1}
}

// update is attach's WithProgress callback: done of total blob bytes.
func (b *progressBar) update(done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.total = done, total
	pct := percent(done, total)
	t := b.now()
	if b.pct >= 0 && (pct == b.pct || t.Sub(b.last) < progressEvery) {
		return
	}
	b.last, b.pct = t, pct
	b.draws++
	b.out.bar(b.line(pct))
}

// finish draws the bar's last state (full when ok) and ends its line.
func (b *progressBar) finish(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pct < 0 && !ok {
		b.out.bar("") // nothing was drawn
		return
	}
	if ok {
		b.done = b.total
	}
	line := b.line(percent(b.done, b.total))
	if !ok {
		line += "  failed"
	}
	b.out.endBar(line)
}

func (b *progressBar) line(pct int) string {
	const width = 20
	fill := pct * width / 100
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d bytes", b.label,
		strings.Repeat("#", fill), strings.Repeat("-", width-fill), pct, b.done, b.total)
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(min(100, max(0, done*100/total)))
}

// bar draws the progress line s in place of the one on screen (none when
// s is ""), without a newline.
func (p *printer) bar(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBar()
	p.line = s
	fmt.Fprint(p.w, s)
}

// endBar draws the progress line s for the last time and ends it.
func (p *printer) endBar(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBar()
	p.line = ""
	fmt.Fprintln(p.w, s)
}

// clearBar blanks the progress line on screen, if any; p.mu is held.
func (p *printer) clearBar() {
	if p.line != "" {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", utf8.RuneCountInString(p.line))+"\r")
	}
}
