package attach_test

import (
	"bytes"
	"crypto/sha3"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
)

// fileOf returns n bytes of a deterministic pseudo-random file named name.
func fileOf(name string, n int) []byte {
	return sha3.SumSHAKE128([]byte("sealpost attach test "+name), n)
}

// keyOf returns a fixed key named name.
func keyOf(t testing.TB, name string) *attach.Key {
	t.Helper()
	k, err := attach.NewKey(fileOf("key "+name, attach.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encrypt returns the blob of file under key.
func encrypt(t testing.TB, key *attach.Key, file []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := attach.NewWriter(&buf, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(file); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decrypt reads blob sequentially with a small, odd buffer size.
func decrypt(key *attach.Key, blob []byte) ([]byte, error) {
	r, err := attach.NewReader(bytes.NewReader(blob), key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	small, large := make([]byte, 7777), make([]byte, 200_000)
	for i := 0; ; i++ {
		buf := small // alternate small reads and reads of whole chunks
		if i%3 != 0 {
			buf = large
		}
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// copyOut decrypts blob with io.Copy, so through Reader.WriteTo, into a
// writer that has no ReadFrom.
func copyOut(key *attach.Key, blob []byte) ([]byte, error) {
	r, err := attach.NewReader(bytes.NewReader(blob), key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(struct{ io.Writer }{&out}, r)
	return out.Bytes(), err
}

// openAll reads blob through a ReaderAt in one ReadAt.
func openAll(key *attach.Key, blob []byte) ([]byte, error) {
	r, err := attach.NewReaderAt(bytes.NewReader(blob), int64(len(blob)), key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, r.Size())
	n, err := r.ReadAt(out, 0)
	if err != nil && !(err == io.EOF && n == len(out)) {
		return out[:n], err
	}
	return out, nil
}

// typed reports whether err matches one of the package's sentinels.
func typed(err error) bool {
	for _, s := range []error{attach.ErrMalformed, attach.ErrUnsupportedVersion, attach.ErrTooLarge,
		attach.ErrDecrypt, attach.ErrTruncated, attach.ErrWrongBlob} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// mustFail checks that blob is refused with a typed error by the
// sequential reader and by the random-access reader (wantReader and
// wantAt: nil accepts any sentinel).
func mustFail(t *testing.T, what string, key *attach.Key, blob []byte, want error) {
	t.Helper()
	check := func(how string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: %s accepted", what, how)
		}
		if !typed(err) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("%s: %s: %v, want %v", what, how, err, want)
		}
	}
	_, err := decrypt(key, blob)
	check("Reader", err)
	_, err = copyOut(key, blob)
	check("Reader.WriteTo", err)
	_, err = openAll(key, blob)
	check("ReaderAt", err)
}

func itoa(i int) string { return strconv.Itoa(i) }

func isErr(err, target error) bool { return errors.Is(err, target) }
