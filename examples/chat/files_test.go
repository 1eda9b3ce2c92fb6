package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
	bolt "go.etcd.io/bbolt"
)

// writeFile writes n random bytes to dir/name and returns the path and
// the bytes.
func writeFile(t *testing.T, dir, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

var fileLineRE = regexp.MustCompile(`<alice> \[file (\d+): (.*)\]: /save (\d+) <path>$`)

// fileNumber waits for the line that announces an incoming file called
// name and returns its number.
func (c *term) fileNumber(name string) string {
	c.t.Helper()
	m := fileLineRE.FindStringSubmatch(c.expectEver("<alice> [file "))
	if m == nil || !strings.HasPrefix(m[2], name+",") {
		c.t.Fatalf("%s: no file line for %s (%q)", c.name, name, m)
	}
	if m[1] != m[3] {
		c.t.Fatalf("the file line names file %s but says /save %s", m[1], m[3])
	}
	return m[1]
}

// pair starts Alice and Bob (Bob on bobURL, or the relay's own URL) with
// a session from Alice to Bob.
func pair(t *testing.T, relayURL, bobURL string, extra ...string) (alice, bob *term, dir string) {
	t.Helper()
	dir = t.TempDir()
	if bobURL == "" {
		bobURL = relayURL
	}
	alice = startChat(t, relayURL, "alice", filepath.Join(dir, "alice.db"), extra...)
	bob = startChat(t, bobURL, "bob", filepath.Join(dir, "bob.db"), extra...)
	alice.cmd("/add bob")
	alice.expect("added bob.1")
	return alice, bob, dir
}

// TestSendAndSaveFile: a file of a few hundred KB goes from Alice to Bob
// through the relay's blob store, with progress bars on both sides; Bob's
// history numbers it, /save writes exactly the file (to a path, or into a
// folder under the sender's name) and never replaces an existing file.
func TestSendAndSaveFile(t *testing.T) {
	hs := newRelay(t)
	alice, bob, dir := pair(t, hs.URL, "")
	src, data := writeFile(t, t.TempDir(), "notes.bin", 300_000)

	alice.cmd("/send bob " + src)
	up := alice.expect("↑ notes.bin to bob [")
	if !strings.Contains(up, "[####################] 100% ") {
		t.Errorf("the upload bar did not end full: %q", up)
	}
	blob, _ := attach.EncryptedSize(int64(len(data)))
	alice.expect("uploaded [file 1: notes.bin, 293.0 KiB (300000 bytes)] as a " + itoa(blob) + "-byte encrypted blob; sending it to bob")
	alice.expect(`✓ sent to bob: "[file 1: notes.bin, 293.0 KiB (300000 bytes)]"`)
	n := bob.fileNumber("notes.bin")
	bob.cmd("/history alice")
	bob.expect("alice: [file " + n + ": notes.bin, 293.0 KiB (300000 bytes)]  [received]")

	out := filepath.Join(dir, "received.bin")
	bob.cmd("/save " + n + " " + out)
	down := bob.expect("↓ notes.bin to " + out + " [")
	if !strings.Contains(down, "100% "+itoa(blob)+"/"+itoa(blob)+" bytes") {
		t.Errorf("the download bar did not end at the blob's size: %q", down)
	}
	bob.expect("saved file " + n + " to " + out + ": 300000 bytes, every chunk and the digest checked")
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved file: %v, %d bytes, equal %v", err, len(got), bytes.Equal(got, data))
	}

	// Into a folder: under the sender's name.
	folder := filepath.Join(dir, "inbox")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	bob.cmd("/save " + n + " " + folder)
	bob.expect("saved file " + n + " to " + filepath.Join(folder, "notes.bin"))
	if got, err := os.ReadFile(filepath.Join(folder, "notes.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved into a folder: %v", err)
	}
	// Never over an existing file, and no temporary file is left over.
	bob.cmd("/save " + n + " " + folder)
	bob.expect("! /save: " + filepath.Join(folder, "notes.bin") + " exists: choose another path")
	if names := dirNames(t, folder); len(names) != 1 {
		t.Errorf("the folder holds %q", names)
	}
	bob.cmd("/save 99 " + filepath.Join(dir, "x"))
	bob.expect("! /save: no file 99 (see /history)")
	bob.cmd("/save one " + filepath.Join(dir, "x"))
	bob.expect("! usage: /save <n> <path>")

	// The file's number and pointer survive a restart.
	bob.quit()
	bob = startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	again := filepath.Join(dir, "again.bin")
	bob.cmd("/save " + n + " " + again)
	bob.expect("saved file " + n + " to " + again)
	alice.quit()
	bob.quit()
}

// TestSaveNoDirectory: /save to a path in a folder that does not exist is
// one clear error line, and creates neither the folder nor the file.
func TestSaveNoDirectory(t *testing.T) {
	hs := newRelay(t)
	alice, bob, dir := pair(t, hs.URL, "")
	src, _ := writeFile(t, t.TempDir(), "a.txt", 5000)
	alice.cmd("/send bob " + src)
	n := bob.fileNumber("a.txt")
	missing := filepath.Join(dir, "no", "such", "folder")
	bob.cmd("/save " + n + " " + filepath.Join(missing, "a.txt"))
	bob.expect("! /save: no directory " + missing + ": nothing saved")
	if _, err := os.Stat(filepath.Join(dir, "no")); !os.IsNotExist(err) {
		t.Errorf("the missing folder exists now (%v)", err)
	}
	alice.quit()
	bob.quit()
}

// tamperProxy forwards to the relay and flips one byte of every blob it
// serves (a relay, or anyone on its path, changing a stored file).
func tamperProxy(t *testing.T, relayURL string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(relayURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || !strings.HasPrefix(resp.Request.URL.Path, "/v1/blobs/") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if len(body) > 1000 {
			body[1000] ^= 0x01
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	hs := httptest.NewServer(rp)
	t.Cleanup(hs.Close)
	return hs
}

// TestSaveTamperedBlob: a blob changed on the relay is refused (the chunk
// fails authentication) and nothing is left at the path or beside it.
func TestSaveTamperedBlob(t *testing.T) {
	hs := newRelay(t)
	alice, bob, _ := pair(t, hs.URL, tamperProxy(t, hs.URL).URL)
	src, _ := writeFile(t, t.TempDir(), "photo.jpg", 200_000)
	alice.cmd("/send bob " + src)
	n := bob.fileNumber("photo.jpg")
	saves := t.TempDir()
	out := filepath.Join(saves, "photo.jpg")
	bob.cmd("/save " + n + " " + out)
	bob.expect("! /save: the file failed authentication: the blob was tampered with or is corrupt: nothing saved")
	if names := dirNames(t, saves); len(names) != 0 {
		t.Errorf("a failed save left %q", names)
	}
	alice.quit()
	bob.quit()
}

// TestSaveOtherBlob: a pointer whose id names another blob (the relay, or
// a bug, serving another file under the id) is refused as a digest
// mismatch and leaves no file; one the relay does not know (expired) is
// refused as such.
func TestSaveOtherBlob(t *testing.T) {
	hs := newRelay(t)
	alice, bob, dir := pair(t, hs.URL, "")
	tmp := t.TempDir()
	first, _ := writeFile(t, tmp, "first.bin", 100_000)
	second, _ := writeFile(t, tmp, "second.bin", 100_000)
	alice.cmd("/send bob " + first)
	n1 := bob.fileNumber("first.bin")
	alice.cmd("/send bob " + second)
	bob.expectEver("[file 2: second.bin")
	bob.quit()

	// Point file n1 at the second file's blob.
	db, err := bolt.Open(filepath.Join(dir, "bob.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFiles)
		p1, err := attach.ParsePointer(b.Get(seqKey(1)))
		if err != nil {
			return err
		}
		p2, err := attach.ParsePointer(b.Get(seqKey(2)))
		if err != nil {
			return err
		}
		p1.ID = p2.ID
		p2.ID += "x" // a download token the relay never gave out
		for i, p := range []*attach.Pointer{p1, p2} {
			raw, err := p.MarshalBinary()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(uint64(i+1)), raw); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	bob = startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	saves := t.TempDir()
	bob.cmd("/save " + n1 + " " + filepath.Join(saves, "first.bin"))
	bob.expect("! /save: the relay served another blob than the message names (digest mismatch): nothing saved")
	start := time.Now()
	bob.cmd("/save 2 " + filepath.Join(saves, "second.bin"))
	bob.expect("! /save: the relay does not have the file (expired, or never completely uploaded): nothing saved")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a 404 took %v: retried as if the connection had failed", d)
	}
	if names := dirNames(t, saves); len(names) != 0 {
		t.Errorf("a failed save left %q", names)
	}
	alice.quit()
	bob.quit()
}

// TestSendFileErrors: a missing file, a folder, a file over -max-file and
// a file over the relay's blob limit each give one clear line, and
// nothing is sent.
func TestSendFileErrors(t *testing.T) {
	hs := newRelayConfig(t, server.Config{BlobMaxSize: 20_000})
	alice, bob, _ := pair(t, hs.URL, "", "-max-file", "50000")
	tmp := t.TempDir()
	alice.cmd("/send bob " + filepath.Join(tmp, "missing.txt"))
	alice.expect("! /send: no such file: " + filepath.Join(tmp, "missing.txt"))
	alice.cmd("/send bob " + tmp)
	alice.expect("! /send: " + tmp + " is not a regular file")
	big, _ := writeFile(t, tmp, "big.bin", 60_000)
	alice.cmd("/send bob " + big)
	alice.expect("! /send: " + big + " is 58.6 KiB (60000 bytes), over the limit of 48.8 KiB (50000 bytes) (-max-file)")
	mid, _ := writeFile(t, tmp, "mid.bin", 30_000)
	alice.cmd("/send bob " + mid)
	alice.expect("! /send: the relay refused the file as too large: blob of ")
	alice.cmd("/send nobody " + mid)
	alice.expect(`! unknown contact "nobody"`)
	alice.cmd("/send bob")
	alice.expect("! usage: /send <user> <file>")
	// Nothing reached Bob; a message still does.
	alice.cmd("/msg bob only this")
	bob.expectEver("<alice> only this")
	if l, ok := bob.has("[file"); ok {
		t.Errorf("Bob got a file: %q", l)
	}
	alice.quit()
	bob.quit()
}

// has returns the first output line containing s.
func (c *term) has(s string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			return l, true
		}
	}
	return "", false
}

// TestProgressThrottled: a transfer reporting progress a thousand times
// in a second redraws its bar about ten times, always on one line (\r, no
// newline until it ends), and a line printed meanwhile does not break it.
func TestProgressThrottled(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	a := &app{out: &printer{w: &buf}, now: func() time.Time { return now }}
	bar := a.newBar("↑ f to bob")
	const total = 1_000_000
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		bar.update(int64(i+1)*1000, total)
		if i == 500 {
			a.out.printf("12:00:00 <bob> hi")
		}
	}
	bar.finish(true)
	if bar.draws < 5 || bar.draws > 12 {
		t.Errorf("%d redraws in a second", bar.draws)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "12:00:00 <bob> hi") ||
		!strings.HasSuffix(lines[1], "↑ f to bob [####################] 100% 1000000/1000000 bytes") {
		t.Errorf("output %q", out)
	}
	failed := a.newBar("↓ g")
	buf.Reset()
	failed.update(10, 100)
	failed.finish(false)
	if !strings.HasSuffix(buf.String(), "↓ g [##------------------]  10% 10/100 bytes  failed\n") {
		t.Errorf("a failed bar: %q", buf.String())
	}
}

// TestSafeName: a sender's file name cannot become a hidden file, nor be
// empty, when /save puts it in a folder. A name that hides its extension
// behind a bidi override never gets this far: attach.ValidName refuses it,
// so its message does not parse; the chat still cleans one it is handed.
func TestSafeName(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"report.pdf", "report.pdf"},
		{".profile", "_profile"},
		{"..x", "__x"},
		{"", "file-7"},
		{"übung 1.txt", "übung 1.txt"},
	} {
		if got := safeName(c.name, 7); got != c.want {
			t.Errorf("safeName(%q) = %q, want %q", c.name, got, c.want)
		}
		if !attach.ValidName(c.name) {
			t.Errorf("%q is not a valid pointer name: the case tests nothing", c.name)
		}
	}
	if attach.ValidName("photo\u202egpj.exe") {
		t.Error("a pointer name with a right-to-left override is valid")
	}
	if got, want := safeName("photo\u202egpj.exe", 7), "photo_gpj.exe"; got != want {
		t.Errorf("safeName = %q, want %q", got, want)
	}
	if got := displayName("a\u202eb"); got != "a_b" {
		t.Errorf("displayName = %q", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// refusingStore answers every call with err.
type refusingStore struct{ err error }

func (s refusingStore) Create(context.Context, int64) (string, string, error) { return "", "", s.err }
func (s refusingStore) Put(context.Context, string, int64, io.Reader) error   { return s.err }
func (s refusingStore) Offset(context.Context, string) (int64, error)         { return 0, s.err }
func (s refusingStore) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, s.err
}

// TestRefusals: a transfer ends at the relay's refusal (a 4xx), not at a
// failure worth retrying (a 5xx, a 408 or 429, a lost connection), nor at
// a Put's 409, which is how the relay asks to resume elsewhere.
func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		err    error
		ends   bool
		putOK  bool // a Put with this error does not end it
		reason string
	}{
		{&client.StatusError{Code: http.StatusNotFound}, true, false, "404"},
		{&client.StatusError{Code: http.StatusForbidden}, true, false, "403"},
		{&client.StatusError{Code: http.StatusConflict}, true, true, "409"},
		{&client.StatusError{Code: http.StatusTooManyRequests}, false, true, "429"},
		{&client.StatusError{Code: http.StatusRequestTimeout}, false, true, "408"},
		{&client.StatusError{Code: http.StatusBadGateway}, false, true, "502"},
		{io.ErrUnexpectedEOF, false, true, "a cut connection"},
	} {
		for _, call := range []string{"Get", "Offset", "Put"} {
			ctx, cancel := context.WithCancel(context.Background())
			r := refusals{refusingStore{c.err}, cancel}
			want := c.ends
			switch call {
			case "Get":
				r.Get(ctx, "id", 0, 1)
			case "Offset":
				r.Offset(ctx, "id")
			case "Put":
				r.Put(ctx, "id", 0, strings.NewReader("x"))
				want = c.ends && !c.putOK
			}
			if got := ctx.Err() != nil; got != want {
				t.Errorf("%s answered %s: ended %v, want %v", call, c.reason, got, want)
			}
			cancel()
		}
	}
}
