package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/kdf"
)

// Device lists (docs/SPEC.md section 22). The relay stores the newest list
// of each account as an opaque blob and hands it out; clients verify it
// and pin the newest they have seen. A device is encrypted to only if a
// verified list names it, so the relay cannot add a "ghost device".

// DeviceListFormat is the version of the device-list encoding; any other
// is ErrUnsupportedVersion.
const DeviceListFormat = 1

// Device-list limits.
const (
	// MaxDevices bounds the devices of one account: a phone, a laptop, a
	// tablet and a few more, as WhatsApp and Signal allow; each device is
	// a fan-out envelope on every send.
	MaxDevices = 8
	// MaxDeviceNameLength bounds a device's name in bytes.
	MaxDeviceNameLength = 64
	// MaxDeviceListSize bounds an encoded list (MaxDevices devices with the
	// longest names take 1,747 bytes).
	MaxDeviceListSize = 2048
)

// deviceListFixed is the size of a list without its devices: format,
// account key, version, previous hash, issued, expires, count, signature.
const deviceListFixed = 1 + PublicAccountKeySize + 8 + 32 + 8 + 8 + 1 + ed25519.SignatureSize

// ListedDevice is one device of an account's list: its device number (the
// Device of its Address), its identity, and a name for people to read.
type ListedDevice struct {
	ID       uint32
	Identity PublicIdentity
	Name     string
}

// DeviceList is a verified, signed list of an account's devices. Values
// come from [NewDeviceList] or [ParseDeviceList]; its fields must not be
// changed.
type DeviceList struct {
	Account PublicAccountKey
	// Version is 1 for the account's first list and grows by one with
	// each list; Prev is the Hash of the list it follows (zero for 1).
	Version uint64
	Prev    [32]byte
	// Issued and Expires (whole seconds) bound when the list is valid; a
	// list past Expires is refused, so the account's devices must publish
	// a new one before then.
	Issued, Expires time.Time
	Devices         []ListedDevice
	raw             []byte
}

// NewDeviceList signs the list of devices that follows prev (nil: the
// account's first list) with the account key, valid from issued until
// expires. It returns ErrMalformed for no device, a device id or identity
// listed twice, a bad name, times out of order, or a prev of another
// account; ErrTooLarge for more than MaxDevices devices.
func NewDeviceList(k *AccountKey, prev *DeviceList, issued, expires time.Time, devices []ListedDevice) (*DeviceList, error) {
	l := &DeviceList{Account: k.Public(), Version: 1, Issued: issued.Truncate(time.Second), Expires: expires.Truncate(time.Second),
		Devices: slices.Clone(devices)}
	if prev != nil {
		if !prev.Account.Equal(l.Account) {
			return nil, fmt.Errorf("%w: the previous list is of another account", ErrMalformed)
		}
		l.Version, l.Prev = prev.Version+1, prev.Hash()
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	body := l.appendBody(make([]byte, 0, l.size()))
	l.raw = append(body, k.sign(kdf.LabelSigDeviceList, body)...)
	return l, nil
}

// ParseDeviceList decodes a device list and verifies its signature by the
// account key it names, and its expiry (by the clock of WithClock,
// time.Now by default). It returns ErrUnsupportedVersion for another
// format, ErrMalformed for a bad encoding (including a device id or
// identity listed twice), ErrTooLarge for more than MaxDevices devices or
// an encoding over MaxDeviceListSize, ErrBadSignature for a signature that
// does not verify and ErrExpired for an expired list. Whether the list may
// replace the one pinned for the account is Follows'.
func ParseDeviceList(raw []byte, opts ...VerifyOption) (*DeviceList, error) {
	switch {
	case len(raw) > MaxDeviceListSize:
		return nil, fmt.Errorf("%w: device list of %d bytes", ErrTooLarge, len(raw))
	case len(raw) == 0:
		return nil, fmt.Errorf("%w: empty device list", ErrMalformed)
	case raw[0] != DeviceListFormat:
		return nil, fmt.Errorf("%w: device list format %d", ErrUnsupportedVersion, raw[0])
	case len(raw) < deviceListFixed:
		return nil, fmt.Errorf("%w: device list truncated", ErrMalformed)
	}
	l := &DeviceList{raw: bytes.Clone(raw)}
	b := l.raw[1:]
	var err error
	if l.Account, err = ParsePublicAccountKey(b[:PublicAccountKeySize]); err != nil {
		return nil, err
	}
	b = b[PublicAccountKeySize:]
	l.Version = binary.BigEndian.Uint64(b)
	copy(l.Prev[:], b[8:40])
	issued, expires := binary.BigEndian.Uint64(b[40:]), binary.BigEndian.Uint64(b[48:])
	if issued > maxExpiry || expires > maxExpiry {
		return nil, fmt.Errorf("%w: device list times out of range", ErrMalformed)
	}
	l.Issued, l.Expires = time.Unix(int64(issued), 0), time.Unix(int64(expires), 0)
	n := int(b[56])
	if n > MaxDevices {
		return nil, fmt.Errorf("%w: %d devices, at most %d", ErrTooLarge, n, MaxDevices)
	}
	b = b[57:]
	for range n {
		if len(b) < 4+PublicIdentitySize+1 {
			return nil, fmt.Errorf("%w: device list truncated", ErrMalformed)
		}
		d := ListedDevice{ID: binary.BigEndian.Uint32(b)}
		if d.Identity, err = ParsePublicIdentity(b[4 : 4+PublicIdentitySize]); err != nil {
			return nil, err
		}
		b = b[4+PublicIdentitySize:]
		nl := int(b[0])
		if len(b) < 1+nl {
			return nil, fmt.Errorf("%w: device list truncated", ErrMalformed)
		}
		d.Name = string(b[1 : 1+nl])
		b = b[1+nl:]
		l.Devices = append(l.Devices, d)
	}
	if len(b) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: device list signature of %d bytes", ErrMalformed, len(b))
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	body := l.raw[:len(l.raw)-ed25519.SignatureSize]
	if err := l.Account.verify(b, kdf.LabelSigDeviceList, body); err != nil {
		return nil, err
	}
	if now := verifyConfigOf(opts).now(); !now.Before(l.Expires) {
		return nil, fmt.Errorf("%w: device list expired at %s", ErrExpired, l.Expires.UTC().Format(time.RFC3339))
	}
	return l, nil
}

// check validates the list's fields (not its signature or expiry).
func (l *DeviceList) check() error {
	switch {
	case len(l.Devices) == 0:
		return fmt.Errorf("%w: a device list without devices", ErrMalformed)
	case len(l.Devices) > MaxDevices:
		return fmt.Errorf("%w: %d devices, at most %d", ErrTooLarge, len(l.Devices), MaxDevices)
	case l.Version == 0:
		return fmt.Errorf("%w: device list version 0", ErrMalformed)
	case (l.Version == 1) != (l.Prev == [32]byte{}):
		return fmt.Errorf("%w: device list %d with a previous hash that does not fit", ErrMalformed, l.Version)
	case l.Issued.Unix() < 1 || !l.Issued.Before(l.Expires) || l.Expires.Unix() > maxExpiry:
		return fmt.Errorf("%w: device list times out of order", ErrMalformed)
	case l.Account.IsZero():
		return fmt.Errorf("%w: device list without an account key", ErrMalformed)
	}
	for i, d := range l.Devices {
		if !validDeviceName(d.Name) {
			return fmt.Errorf("%w: device %d name", ErrMalformed, d.ID)
		}
		if d.Identity.IsZero() {
			return fmt.Errorf("%w: device %d without an identity", ErrMalformed, d.ID)
		}
		for _, e := range l.Devices[:i] {
			if e.ID == d.ID || e.Identity.Equal(d.Identity) {
				return fmt.Errorf("%w: device %d listed twice", ErrMalformed, d.ID)
			}
		}
	}
	return nil
}

// validDeviceName reports whether a device name is 1 to
// MaxDeviceNameLength bytes of UTF-8 with only graphic characters and
// spaces: no control or format characters (such as bidirectional
// overrides), which would let a name disguise itself.
func validDeviceName(name string) bool {
	if name == "" || len(name) > MaxDeviceNameLength || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// size is the length of the list's encoding.
func (l *DeviceList) size() int {
	n := deviceListFixed
	for _, d := range l.Devices {
		n += 4 + PublicIdentitySize + 1 + len(d.Name)
	}
	return n
}

// appendBody appends the encoding without the signature: what the
// account key signs.
func (l *DeviceList) appendBody(b []byte) []byte {
	b = append(b, DeviceListFormat)
	b = append(b, l.Account.Bytes()...)
	b = binary.BigEndian.AppendUint64(b, l.Version)
	b = append(b, l.Prev[:]...)
	b = binary.BigEndian.AppendUint64(b, wireExpiry(l.Issued)) // check bounded both to 1..maxExpiry
	b = binary.BigEndian.AppendUint64(b, wireExpiry(l.Expires))
	b = append(b, smallCount(len(l.Devices)))
	for _, d := range l.Devices {
		b = binary.BigEndian.AppendUint32(b, d.ID)
		b = append(b, d.Identity.Bytes()...)
		b = append(b, smallCount(len(d.Name)))
		b = append(b, d.Name...)
	}
	return b
}

// smallCount returns n as one byte; check has bounded every count it
// takes (devices, name lengths) far below 256.
func smallCount(n int) byte {
	if n < 0 || n > 0xff {
		panic("sealpost/keys: a count check did not bound")
	}
	return byte(n)
}

// Bytes returns a copy of the signed encoding, the blob to publish.
func (l *DeviceList) Bytes() []byte { return bytes.Clone(l.raw) }

// Matches reports whether raw is this list's encoding, byte for byte: a
// list carried again need not be verified again.
func (l *DeviceList) Matches(raw []byte) bool { return bytes.Equal(l.raw, raw) }

// Hash returns the hash of the whole encoding, which the next list names
// as its Prev.
func (l *DeviceList) Hash() [32]byte { return kdf.Hash(kdf.LabelDeviceListHash, l.raw) }

// Device returns the listed device with id, if the list names it.
func (l *DeviceList) Device(id uint32) (ListedDevice, bool) {
	for _, d := range l.Devices {
		if d.ID == id {
			return d, true
		}
	}
	return ListedDevice{}, false
}

// ForkError is two validly signed lists of one account with the same
// version and different contents: evidence that the relay serves two
// histories or that the account key was stolen. It matches ErrFork.
type ForkError struct {
	Pinned, Other *DeviceList
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("%v: two lists of version %d", ErrFork, e.Pinned.Version)
}

// Unwrap returns ErrFork.
func (e *ForkError) Unwrap() error { return ErrFork }

// Follows reports whether l may replace pinned, the newest list seen for
// the account (nil: none yet, so l is pinned on first use). It returns nil
// for the same list or a newer one, ErrWrongAccount for a list of another
// account key (an identity change, which the app handles as one),
// ErrRollback for an older version, a *ForkError for another list of the
// same version, and ErrBrokenChain for the next version that does not name
// pinned's hash. A version more than one ahead is accepted: the relay keeps
// only the newest list, so the ones between may be gone, and the account
// key's signature is what vouches for it.
func (l *DeviceList) Follows(pinned *DeviceList) error {
	switch {
	case pinned == nil:
		return nil
	case !l.Account.Equal(pinned.Account):
		return fmt.Errorf("%w: pinned %v, got %v", ErrWrongAccount, pinned.Account, l.Account)
	case l.Version < pinned.Version:
		return fmt.Errorf("%w: version %d, pinned %d", ErrRollback, l.Version, pinned.Version)
	case l.Version == pinned.Version:
		if bytes.Equal(l.raw, pinned.raw) {
			return nil
		}
		return &ForkError{Pinned: pinned, Other: l}
	case l.Version == pinned.Version+1 && l.Prev != pinned.Hash():
		return fmt.Errorf("%w: version %d does not name version %d", ErrBrokenChain, l.Version, pinned.Version)
	}
	return nil
}
