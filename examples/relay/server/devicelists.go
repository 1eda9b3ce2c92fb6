package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Device lists (docs/SPEC.md section 22). Each account (the {user} of
// /v1/bundles/{user}/{device}) has one signed list of its devices. The
// relay keeps the newest list of each account and hands it out; it does
// not understand devices, and it cannot forge a list: clients verify the
// whole list and pin its account key themselves. What the relay checks is
// only what it needs to keep one account's lists in order: that a list is
// signed by the key it names, that this key is the account's (the key of
// its first list: trust on first upload, as a device's bundle upload key),
// and that its version grows.
//
// The bytes it reads (the format is keys.NewDeviceList's; the relay
// re-implements the check so as not to link keys, which holds keys):
//
//	u8   format        1 (keys.DeviceListFormat)
//	u8   key type      0x02 (Ed25519)
//	32   account key   Ed25519 public key
//	u64  version       big-endian: 1 for the account's first list, then growing
//	...                previous hash, issued, expires, devices: opaque to the relay
//	64   signature     Ed25519, by the account key, over signed(body)
//
// where body is every byte before the signature and, as in every sealpost
// signature (docs/SPEC.md 5.4; u16 is big-endian),
//
//	signed(body) = u16 len(label) || label || u16 len(body) || body
//	label        = "sealpost v1 sig device list" (27 ASCII bytes, kdf.LabelSigDeviceList)
//
// A whole list is at most MaxDeviceListSize bytes. The relay does not
// check what it does not read: the devices, the times (an expired list is
// stored as any other) and whether the account key is a canonical point of
// large order; clients refuse such lists (keys.ParseDeviceList).

// Device-list constants.
const (
	// DeviceListBucket holds the newest device list of each account,
	// "acc.<hex user>", the raw signed bytes. Nothing expires.
	DeviceListBucket = "SEALPOST_DEVICE_LISTS"
	// MaxDeviceListSize bounds a device list (keys.MaxDeviceListSize;
	// eight devices with the longest names take 1,747 bytes).
	MaxDeviceListSize = 2048

	deviceListFormat = 1
	accountKeyType   = 0x02
	deviceListLabel  = "sealpost v1 sig device list"
	listHeadSize     = 1 + 1 + ed25519.PublicKeySize + 8 // format, typed key, version
	// maxListTries bounds the compare-and-swap races lost to concurrent
	// uploads of one account's list.
	maxListTries = 8
)

// listHead is what the relay reads of a device list.
type listHead struct {
	account ed25519.PublicKey // the 32-byte key, without its type byte
	version uint64
}

// errBadList is a list whose bytes do not have the format or whose
// signature does not verify.
var errBadList = errors.New("not a device list signed by the account key it names")

// readListHead reads the format, account key and version of raw, without
// checking the signature: for lists the relay stored, which it checked.
func readListHead(raw []byte) (listHead, error) {
	if len(raw) < listHeadSize+ed25519.SignatureSize || len(raw) > MaxDeviceListSize ||
		raw[0] != deviceListFormat || raw[1] != accountKeyType {
		return listHead{}, errBadList
	}
	h := listHead{account: ed25519.PublicKey(raw[2 : 2+ed25519.PublicKeySize]),
		version: binary.BigEndian.Uint64(raw[2+ed25519.PublicKeySize:])}
	if h.version == 0 {
		return listHead{}, errBadList
	}
	return h, nil
}

// verifyDeviceList reads raw's head and checks its signature by the
// account key it names.
func verifyDeviceList(raw []byte) (listHead, error) {
	h, err := readListHead(raw)
	if err != nil {
		return listHead{}, err
	}
	body, sig := raw[:len(raw)-ed25519.SignatureSize], raw[len(raw)-ed25519.SignatureSize:]
	if !ed25519.Verify(h.account, deviceListSigned(body), sig) {
		return listHead{}, errBadList
	}
	return h, nil
}

// deviceListSigned is the message the account key signs: the label and
// the body, each after its u16 length.
func deviceListSigned(body []byte) []byte {
	msg := make([]byte, 0, 2+len(deviceListLabel)+2+len(body))
	const labelLen = uint16(len(deviceListLabel))
	msg = binary.BigEndian.AppendUint16(msg, labelLen)
	msg = append(msg, deviceListLabel...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(body))) // body < MaxDeviceListSize
	return append(msg, body...)
}

func (r *Relay) setupDeviceLists(ctx context.Context) error {
	var err error
	r.devLists, err = r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       DeviceListBucket,
		Description:  "sealpost device lists: the newest signed list of each account",
		MaxValueSize: MaxDeviceListSize,
		Storage:      jetstream.FileStorage,
		Replicas:     r.cfg.Replicas,
		History:      1,
	})
	if err != nil {
		return fmt.Errorf("relay: bucket %s: %w", DeviceListBucket, err)
	}
	return nil
}

// deviceListName returns the bucket key of the account in the path, or ok
// false for a bad user.
func deviceListName(req *http.Request) (string, bool) {
	user := req.PathValue("user")
	if user == "" || len(user) > maxUserLength {
		return "", false
	}
	return "acc." + hex.EncodeToString([]byte(user)), true
}

// putDeviceList stores the account's device list, the body: 201 for the
// account's first list (its key is now the account's), 204 for a newer
// one signed by that key. 400 for bytes that are not a list signed by the
// key they name, 403 for a list of another account key, 409 for a version
// not above the stored one, 413 over MaxDeviceListSize. The list's own
// signature is the request's authentication: nobody but the account key's
// holder can make a list the relay accepts, and a replayed one is old.
func (r *Relay) putDeviceList(w http.ResponseWriter, req *http.Request) {
	name, ok := deviceListName(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad user")
		return
	}
	if req.ContentLength > MaxDeviceListSize {
		httpError(w, http.StatusRequestEntityTooLarge, "device list over "+strconv.Itoa(MaxDeviceListSize)+" bytes")
		return
	}
	readDeadline(w)
	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxDeviceListSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "device list over "+strconv.Itoa(MaxDeviceListSize)+" bytes")
		} else {
			httpError(w, http.StatusBadRequest, "reading the device list failed")
		}
		return
	}
	list, err := verifyDeviceList(raw)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := req.Context()
	// Read, check, then write only if nothing changed in between (Create
	// for the first list, Update at the revision read): of two relays
	// storing lists of one account at once, the loser checks again.
	for range maxListTries {
		e, err := r.devLists.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = r.devLists.Create(ctx, name, raw)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			if err != nil {
				r.storeError(w, "storing a device list", err)
				return
			}
			r.log.Info("device list pinned", "version", list.version)
			w.WriteHeader(http.StatusCreated)
			return
		}
		if err != nil {
			r.storeError(w, "reading a device list", err)
			return
		}
		stored, err := readListHead(e.Value())
		if err != nil {
			r.storeError(w, "reading a stored device list", err)
			return
		}
		if !bytes.Equal(stored.account, list.account) {
			httpError(w, http.StatusForbidden, "this account's device lists are signed by another account key")
			return
		}
		if list.version <= stored.version {
			httpError(w, http.StatusConflict, fmt.Sprintf("device list version %d is not newer than the stored version %d",
				list.version, stored.version))
			return
		}
		_, err = r.devLists.Update(ctx, name, raw, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			r.storeError(w, "storing a device list", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Retry-After", "1")
	httpError(w, http.StatusServiceUnavailable, "device list changing too fast: try again")
}

// getDeviceList answers the account's newest device list, or 404.
func (r *Relay) getDeviceList(w http.ResponseWriter, req *http.Request) {
	name, ok := deviceListName(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad user")
		return
	}
	e, err := r.devLists.Get(req.Context(), name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		httpError(w, http.StatusNotFound, "no device list for this account")
		return
	}
	if err != nil {
		r.storeError(w, "reading a device list", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(e.Value())))
	_, _ = w.Write(e.Value()) // the client went away: nothing more to tell
}
