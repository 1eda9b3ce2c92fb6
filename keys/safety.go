package keys

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/kdf"
)

// Safety numbers (docs/SPEC.md section 16).
const (
	// SafetyNumberVersion is the version byte of the scannable form.
	SafetyNumberVersion = 1
	// ScannableSize is the size of the scannable (QR code) form: the
	// version, then the shower's half, then the scanner's expected half.
	ScannableSize = 1 + 2*safetyHalfSize
	// safetyIterations is how often each half is hashed. As in Signal, the
	// work makes a search for a colliding identity 5200 times dearer.
	safetyIterations = 5200
	safetyHalfSize   = 30
)

// SafetyNumber returns the 60-digit number two users compare to check that
// no one sits between them, as 12 groups of 5 digits separated by spaces.
// Each side's half is derived from its identity and user name; the halves
// are ordered so both sides see the same number. Changing either identity
// changes it.
func SafetyNumber(local PublicIdentity, localUser string, remote PublicIdentity, remoteUser string) string {
	return joinHalves(safetyHalf(local, localUser), safetyHalf(remote, remoteUser))
}

// AccountSafetyNumber is SafetyNumber for two accounts (docs/SPEC.md
// section 22.8): each half is derived from an account key and user name,
// under a label of its own, so it stays the same when a device is added
// to or removed from either account, and never equals a number of two
// device identities.
func AccountSafetyNumber(local PublicAccountKey, localUser string, remote PublicAccountKey, remoteUser string) string {
	return joinHalves(iteratedHalf(kdf.LabelAccountSafetyNumber, local.Bytes(), localUser),
		iteratedHalf(kdf.LabelAccountSafetyNumber, remote.Bytes(), remoteUser))
}

// joinHalves orders two halves and renders them in 12 groups of 5 digits.
func joinHalves(l, r [safetyHalfSize]byte) string {
	a, b := digits(l), digits(r)
	if a > b {
		a, b = b, a
	}
	all := a + b
	groups := make([]string, 0, 12)
	for i := 0; i < len(all); i += 5 {
		groups = append(groups, all[i:i+5])
	}
	return strings.Join(groups, " ")
}

// Scannable returns the form of the safety number to show as a QR code: the
// version, the local half, then the remote half.
func Scannable(local PublicIdentity, localUser string, remote PublicIdentity, remoteUser string) []byte {
	out := make([]byte, 0, ScannableSize)
	out = append(out, SafetyNumberVersion)
	l, r := safetyHalf(local, localUser), safetyHalf(remote, remoteUser)
	out = append(out, l[:]...)
	return append(out, r[:]...)
}

// CompareScannable reports whether scanned, read from the peer's screen,
// matches ours (from [Scannable]): the peer's local half must be our remote
// half and the other way round. It returns ErrMalformed for a scan of the
// wrong size and ErrUnsupportedVersion for another version.
func CompareScannable(ours, scanned []byte) (bool, error) {
	if len(scanned) != ScannableSize || len(ours) != ScannableSize {
		return false, fmt.Errorf("%w: scannable safety number must be %d bytes", ErrMalformed, ScannableSize)
	}
	if scanned[0] != SafetyNumberVersion || ours[0] != SafetyNumberVersion {
		return false, fmt.Errorf("%w: scannable safety number version %d", ErrUnsupportedVersion, scanned[0])
	}
	h := safetyHalfSize
	return ct.Equal(ours[1:1+h], scanned[1+h:]) && ct.Equal(ours[1+h:], scanned[1:1+h]), nil
}

// safetyHalf iterates SHA-512 over the identity keys and user name.
func safetyHalf(id PublicIdentity, user string) [safetyHalfSize]byte {
	return iteratedHalf(kdf.LabelSafetyNumber, id.keyBytes(), user)
}

// iteratedHalf iterates SHA-512 over label, keyBytes and the user name.
func iteratedHalf(label string, keyBytes []byte, user string) [safetyHalfSize]byte {
	seed := appendBytes16(nil, []byte(label))
	seed = appendBytes16(seed, keyBytes)
	seed = appendBytes16(seed, []byte(user))
	sum := sha512.Sum512(seed)
	buf := make([]byte, 0, sha512.Size+len(keyBytes))
	for range safetyIterations {
		buf = append(append(buf[:0], sum[:]...), keyBytes...)
		sum = sha512.Sum512(buf)
	}
	var out [safetyHalfSize]byte
	copy(out[:], sum[:])
	return out
}

// digits renders 30 bytes as 30 decimal digits, 5 per 5-byte chunk.
func digits(h [safetyHalfSize]byte) string {
	var sb strings.Builder
	for i := 0; i < safetyHalfSize; i += 5 {
		var chunk [8]byte
		copy(chunk[3:], h[i:i+5])
		fmt.Fprintf(&sb, "%05d", binary.BigEndian.Uint64(chunk[:])%100000)
	}
	return sb.String()
}
