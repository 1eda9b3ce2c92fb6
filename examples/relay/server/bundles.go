package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/examples/relay/auth"
)

// BundleUpload is the body of PUT and POST /v1/bundles/{user}/{device}.
// Blobs are opaque to the relay.
type BundleUpload struct {
	OneTime    [][]byte `json:"one_time,omitempty"`
	LastResort []byte   `json:"last_resort,omitempty"`
}

// Header values of Sealpost-Bundle on a fetched blob.
const (
	BundleHeader     = "Sealpost-Bundle"
	BundleOneTime    = "one-time"
	BundleLastResort = "last-resort"
)

// maxUserLength bounds the user part of an address (as keys.MaxUserLength).
const maxUserLength = 256

// bundleTarget is a device's bundle: its two subjects, the name of its
// upload key in OwnerBucket and the resource its uploads sign.
type bundleTarget struct {
	oneTime, lastResort string
	owner               string
	resource            []byte
}

// bundleSubjects returns the device's bundle, or ok false for a bad user
// or device.
func bundleSubjects(req *http.Request) (t bundleTarget, ok bool) {
	user := req.PathValue("user")
	dev, err := strconv.ParseUint(req.PathValue("device"), 10, 32)
	if user == "" || len(user) > maxUserLength || err != nil {
		return t, false
	}
	name := hex.EncodeToString([]byte(user)) + "." + strconv.FormatUint(dev, 10)
	base := bundlePrefix + name
	return bundleTarget{oneTime: base + ".ot", lastResort: base + ".lr", owner: "bnd." + name,
		resource: auth.BundleResource(user, uint32(dev))}, true
}

// readUpload reads a bundle upload and checks its signature (see
// authorizeBundle) before anything is stored.
func (r *Relay) readUpload(w http.ResponseWriter, req *http.Request, t bundleTarget, needLastResort bool) (*BundleUpload, bool) {
	s, err := signature(req, time.Now())
	if err != nil {
		r.answer(w, "", err)
		return nil, false
	}
	readDeadline(w)
	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBundleRequest))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "bundle upload too large")
		} else {
			httpError(w, http.StatusBadRequest, "reading the bundle upload failed")
		}
		return nil, false
	}
	if err := r.authorizeBundle(req.Context(), req, t.owner, t.resource, raw, s); err != nil {
		r.answer(w, "authorizing a bundle upload", err)
		return nil, false
	}
	var up BundleUpload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&up); err != nil {
		httpError(w, http.StatusBadRequest, "bundle upload is not valid JSON")
		return nil, false
	}
	switch {
	case needLastResort && len(up.LastResort) == 0:
		httpError(w, http.StatusBadRequest, "last_resort is required")
		return nil, false
	case len(up.OneTime) > MaxOneTimeBlobs:
		httpError(w, http.StatusRequestEntityTooLarge, "too many one-time blobs")
		return nil, false
	case len(up.LastResort) > MaxBlobSize:
		httpError(w, http.StatusRequestEntityTooLarge, "blob too large")
		return nil, false
	}
	for _, b := range up.OneTime {
		if len(b) == 0 || len(b) > MaxBlobSize {
			httpError(w, http.StatusRequestEntityTooLarge, "blob empty or too large")
			return nil, false
		}
	}
	return &up, true
}

// putBundle replaces every blob of the device.
func (r *Relay) putBundle(w http.ResponseWriter, req *http.Request) {
	t, ok := bundleSubjects(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad user or device")
		return
	}
	ot, lr := t.oneTime, t.lastResort
	up, ok := r.readUpload(w, req, t, true)
	if !ok {
		return
	}
	ctx := req.Context()
	for _, subj := range []string{ot, lr} {
		if err := r.bundles.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			r.storeError(w, "purging bundle blobs", err)
			return
		}
	}
	r.storeBlobs(w, req, up, ot, lr)
}

// addBundle adds one-time blobs and, if given, replaces the last resort.
func (r *Relay) addBundle(w http.ResponseWriter, req *http.Request) {
	t, ok := bundleSubjects(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad user or device")
		return
	}
	ot, lr := t.oneTime, t.lastResort
	up, ok := r.readUpload(w, req, t, false)
	if !ok {
		return
	}
	if len(up.LastResort) > 0 {
		if err := r.bundles.Purge(req.Context(), jetstream.WithPurgeSubject(lr)); err != nil {
			r.storeError(w, "purging bundle blobs", err)
			return
		}
	}
	r.storeBlobs(w, req, up, ot, lr)
}

func (r *Relay) storeBlobs(w http.ResponseWriter, req *http.Request, up *BundleUpload, ot, lr string) {
	ctx := req.Context()
	for _, b := range up.OneTime {
		if _, err := r.js.Publish(ctx, ot, b); err != nil {
			r.storeError(w, "storing a bundle blob", err)
			return
		}
	}
	if len(up.LastResort) > 0 {
		if _, err := r.js.Publish(ctx, lr, up.LastResort); err != nil {
			r.storeError(w, "storing a bundle blob", err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxTakeTries bounds the races lost to other relays taking the same blob.
const maxTakeTries = 16

// getBundle hands out the oldest one-time blob, deleting it, or the last
// resort when none is left.
func (r *Relay) getBundle(w http.ResponseWriter, req *http.Request) {
	t, ok := bundleSubjects(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "bad user or device")
		return
	}
	ot, lr := t.oneTime, t.lastResort
	ctx := req.Context()
	for range maxTakeTries {
		m, err := r.bundles.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(ot))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			r.storeError(w, "reading a bundle blob", err)
			return
		}
		// Deleting is the claim: if another relay deleted it first, try
		// the next one.
		if err := r.bundles.DeleteMsg(ctx, m.Sequence); err != nil {
			if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
				continue
			}
			r.storeError(w, "taking a bundle blob", err)
			return
		}
		writeBlob(w, BundleOneTime, m.Data)
		return
	}
	m, err := r.bundles.GetLastMsgForSubject(ctx, lr)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		httpError(w, http.StatusNotFound, "no bundle for this device")
		return
	}
	if err != nil {
		r.storeError(w, "reading a bundle blob", err)
		return
	}
	writeBlob(w, BundleLastResort, m.Data)
}

func writeBlob(w http.ResponseWriter, kind string, blob []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(BundleHeader, kind)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
	w.Write(blob)
}

// storeError answers 503 for a failure of NATS, logging what failed.
func (r *Relay) storeError(w http.ResponseWriter, what string, err error) {
	r.log.Warn(what, "err", err)
	refuse(w, reasonNATSUnavailable)
	httpError(w, http.StatusServiceUnavailable, "storage unavailable")
}
