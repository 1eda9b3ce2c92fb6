package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/sealpost/sealpost/internal/kdf"
)

// Link codes (docs/SPEC.md section 22.6). A device being added to an
// account shows a link code, as a QR code, to a device of the account that
// holds the account key. The code carries the new device's address and
// identity and a one-time secret; it travels from screen to camera, never
// through the relay, so the relay can neither replace the identity (the
// approving device checks the new device's bundle against it) nor forge
// the provisioning that the secret authenticates.

// LinkCodeFormat is the version of the link-code encoding; any other is
// ErrUnsupportedVersion.
const LinkCodeFormat = 1

// LinkSecretSize is the size of a link code's one-time secret.
const LinkSecretSize = 32

// MaxLinkCodeSize bounds an encoded link code: it fits a QR code.
const MaxLinkCodeSize = 1 + 2 + MaxUserLength + 4 + PublicIdentitySize + 1 + MaxDeviceNameLength + LinkSecretSize

// LinkCode is what a new device shows to be linked: its address (the
// account's user and a device id not yet listed), its identity, the name
// it asks to be listed under, and a one-time secret.
type LinkCode struct {
	Address  Address
	Identity PublicIdentity
	Name     string
	secret   [LinkSecretSize]byte
}

// NewLinkCode returns a link code for the device at addr with identity id,
// to be listed as name, with a fresh one-time secret. It returns
// ErrMalformed for a bad address or name.
func NewLinkCode(addr Address, id PublicIdentity, name string) (*LinkCode, error) {
	c := &LinkCode{Address: addr, Identity: id, Name: name}
	rand.Read(c.secret[:])
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *LinkCode) check() error {
	if err := c.Address.validate(); err != nil {
		return err
	}
	switch {
	case c.Identity.IsZero():
		return fmt.Errorf("%w: link code without an identity", ErrMalformed)
	case !validDeviceName(c.Name):
		return fmt.Errorf("%w: link code device name", ErrMalformed)
	}
	return nil
}

// Secret returns a copy of the one-time secret. It is as secret as a
// private key: it lets its holder provision the new device.
func (c *LinkCode) Secret() []byte { return bytes.Clone(c.secret[:]) }

// Bytes returns the encoding to show as a QR code:
//
//	format 1 | user_len 2 | user | device 4 | identity | name_len 1 | name | secret 32
//
// (integers big-endian).
func (c *LinkCode) Bytes() []byte {
	b := make([]byte, 0, 1+2+len(c.Address.User)+4+PublicIdentitySize+1+len(c.Name)+LinkSecretSize)
	b = append(b, LinkCodeFormat)
	b = appendBytes16(b, []byte(c.Address.User)) // check bounded it to MaxUserLength
	b = binary.BigEndian.AppendUint32(b, c.Address.Device)
	b = append(b, c.Identity.Bytes()...)
	b = append(b, smallCount(len(c.Name)))
	b = append(b, c.Name...)
	return append(b, c.secret[:]...)
}

// ParseLinkCode decodes a scanned link code. It returns
// ErrUnsupportedVersion for another format, ErrTooLarge over
// MaxLinkCodeSize, and ErrMalformed for anything else that is not a link
// code.
func ParseLinkCode(raw []byte) (*LinkCode, error) {
	switch {
	case len(raw) > MaxLinkCodeSize:
		return nil, fmt.Errorf("%w: link code of %d bytes", ErrTooLarge, len(raw))
	case len(raw) == 0:
		return nil, fmt.Errorf("%w: empty link code", ErrMalformed)
	case raw[0] != LinkCodeFormat:
		return nil, fmt.Errorf("%w: link code format %d", ErrUnsupportedVersion, raw[0])
	case len(raw) < 3:
		return nil, fmt.Errorf("%w: link code truncated", ErrMalformed)
	}
	b := raw[1:]
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+4+PublicIdentitySize+1 {
		return nil, fmt.Errorf("%w: link code truncated", ErrMalformed)
	}
	c := &LinkCode{Address: Address{User: string(b[:n]), Device: binary.BigEndian.Uint32(b[n:])}}
	b = b[n+4:]
	var err error
	if c.Identity, err = ParsePublicIdentity(b[:PublicIdentitySize]); err != nil {
		return nil, err
	}
	b = b[PublicIdentitySize:]
	nl := int(b[0])
	if len(b) != 1+nl+LinkSecretSize {
		return nil, fmt.Errorf("%w: link code length", ErrMalformed)
	}
	c.Name = string(b[1 : 1+nl])
	copy(c.secret[:], b[1+nl:])
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Short returns the code's short form, twelve digits in three groups
// ("0421-9386-1750"): both devices show it, and the user checks that
// they match before approving, so that a code scanned from the wrong
// screen is caught.
func (c *LinkCode) Short() string {
	h := kdf.Hash(kdf.LabelLinkCodeShort, c.Bytes())
	v := binary.BigEndian.Uint64(h[:8]) % 1_000_000_000_000
	return fmt.Sprintf("%04d-%04d-%04d", v/100_000_000, v/10_000%10_000, v%10_000)
}

// String prints the address and short form, never the secret. It and
// Format have value receivers, so that a LinkCode printed by value (or
// inside another struct) hides its secret too.
func (c LinkCode) String() string {
	return "keys.LinkCode{" + c.Address.String() + " " + c.Short() + "}"
}

// GoString prints what String does.
func (c LinkCode) GoString() string { return c.String() }

// Format prints what String does, whatever the verb.
func (c LinkCode) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }
