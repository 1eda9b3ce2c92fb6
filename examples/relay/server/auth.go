package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/auth"
)

// Buckets of the ownership records and of the signed requests seen.
const (
	// OwnerBucket holds the public key each mailbox and each device's
	// bundle was first registered with: "mbx.<hex mailbox>" and
	// "bnd.<hex user>.<device>", 32 bytes each. Nothing expires.
	OwnerBucket = "SEALPOST_OWNERS"
	// SeenBucket holds the replay key of every signed request accepted in
	// the last seenTTL, so a replay is refused by any relay of the
	// cluster, across restarts.
	SeenBucket = "SEALPOST_SEEN"
	// seenTTL keeps a request's record past the end of its window: it is
	// accepted at most auth.Window before its timestamp and refused from
	// auth.Window after it; the margin covers clocks of relays that
	// differ a little.
	seenTTL = 2*auth.Window + 30*time.Second
	// DefaultSeenMaxBytes bounds the seen-set (about 300,000 requests in
	// flight in a window); a full set refuses signed requests with 503
	// rather than forgetting one.
	DefaultSeenMaxBytes = 64 << 20
)

func (r *Relay) setupAuth(ctx context.Context) error {
	var err error
	r.owners, err = r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OwnerBucket,
		Description: "sealpost owner keys of mailboxes and of bundle uploads (first registration wins)",
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.Replicas,
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("relay: bucket %s: %w", OwnerBucket, err)
	}
	r.seen, err = r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SeenBucket,
		Description: "sealpost signed requests seen in the replay window",
		TTL:         seenTTL,
		MaxBytes:    r.cfg.SeenMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.Replicas,
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("relay: bucket %s: %w", SeenBucket, err)
	}
	return nil
}

// authError is a refused signed request: the status and the message.
type authError struct {
	code int
	msg  string
	why  reason // for the metrics; the status's when none (reasonOf)
}

func (e *authError) Error() string { return e.msg }

var (
	errUnsigned   = &authError{http.StatusUnauthorized, "request must be signed (" + auth.Header + " header)", reasonNone}
	errMalformed  = &authError{http.StatusBadRequest, "malformed " + auth.Header + " header", reasonNone}
	errBadKeyHdr  = &authError{http.StatusBadRequest, "malformed " + auth.KeyHeader + " header (a 32-byte Ed25519 public key, base64url)", reasonNone}
	errNoKeyHdr   = &authError{http.StatusBadRequest, auth.KeyHeader + " header required", reasonNone}
	errStale      = &authError{http.StatusUnauthorized, "timestamp of the signed request is outside the relay's window", reasonStale}
	errReplay     = &authError{http.StatusUnauthorized, "replayed request", reasonReplayed}
	errBadSig     = &authError{http.StatusUnauthorized, "signature does not verify with the presented key", reasonNone}
	errNotOwner   = &authError{http.StatusForbidden, "not signed by the mailbox's owner key", reasonNone}
	errNotYours   = &authError{http.StatusForbidden, "this device's bundle was registered with another upload key", reasonNone}
	errNoOwner    = &authError{http.StatusNotFound, "mailbox not registered: register its owner key first", reasonNone}
	errOtherOwner = &authError{http.StatusConflict, "mailbox already registered with another key", reasonNone}
)

// answer writes err: an authError as itself, anything else (NATS) as 503.
func (r *Relay) answer(w http.ResponseWriter, what string, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		refuse(w, ae.why)
		httpError(w, ae.code, ae.msg)
		return
	}
	r.storeError(w, what, err)
}

// signature parses the request's Sealpost-Auth header and checks its
// timestamp; the signature itself is checked by the caller.
func signature(req *http.Request, now time.Time) (auth.Signed, error) {
	v := req.Header.Values(auth.Header)
	if len(v) == 0 {
		return auth.Signed{}, errUnsigned
	}
	if len(v) > 1 {
		return auth.Signed{}, errMalformed
	}
	s, err := auth.ParseHeader(v[0])
	if err != nil {
		return auth.Signed{}, errMalformed
	}
	if !s.Fresh(now) {
		return auth.Signed{}, errStale
	}
	return s, nil
}

// remember adds an accepted request to the seen-set, or refuses it as a
// replay. It runs last, once the request is authorized, so only owners'
// requests take room in the set.
func (r *Relay) remember(ctx context.Context, s auth.Signed) error {
	_, err := r.seen.Create(ctx, s.ReplayKey(), nil)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errReplay
	}
	return err
}

func mailboxOwnerKey(mailbox []byte) string { return "mbx." + hex.EncodeToString(mailbox) }

// mailboxFromPath decodes the {mailbox} path value.
func mailboxFromPath(req *http.Request) ([]byte, bool) {
	mailbox, err := hex.DecodeString(req.PathValue("mailbox"))
	if err != nil || len(mailbox) == 0 || len(mailbox) > envelope.MaxMailboxLength {
		return nil, false
	}
	return mailbox, true
}

// authorizeMailbox checks that req is signed, fresh and unseen, by the
// owner key registered for mailbox.
func (r *Relay) authorizeMailbox(ctx context.Context, req *http.Request, mailbox, body []byte) error {
	if r.noAuth {
		return nil
	}
	s, err := signature(req, time.Now())
	if err != nil {
		return err
	}
	e, err := r.owners.Get(ctx, mailboxOwnerKey(mailbox))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return errNoOwner
	}
	if err != nil {
		return err
	}
	if !s.Verify(e.Value(), req.Method, auth.MailboxResource(mailbox), body) {
		return errNotOwner
	}
	return r.remember(ctx, s)
}

// maxOwnerBody bounds a registration body (a 32-byte public key).
const maxOwnerBody = 64

// registerMailbox records the owner key of a mailbox: the body, a 32-byte
// Ed25519 public key, signed by that key. 201 the first time, 204 when the
// mailbox has this key already, 409 when it has another.
func (r *Relay) registerMailbox(w http.ResponseWriter, req *http.Request) {
	mailbox, ok := mailboxFromPath(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "mailbox must be 1 to 64 bytes in hex")
		return
	}
	s, err := signature(req, time.Now())
	if err != nil {
		r.answer(w, "", err)
		return
	}
	readDeadline(w)
	key, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxOwnerBody))
	if err != nil || len(key) != ed25519.PublicKeySize {
		httpError(w, http.StatusBadRequest, "the body must be the 32-byte Ed25519 owner key")
		return
	}
	if !s.Verify(key, req.Method, auth.MailboxResource(mailbox), key) {
		httpError(w, errBadSig.code, errBadSig.msg)
		return
	}
	ctx := req.Context()
	if err := r.remember(ctx, s); err != nil {
		r.answer(w, "recording a signed request", err)
		return
	}
	created, err := r.trustOnFirstUse(ctx, mailboxOwnerKey(mailbox), key)
	switch {
	case errors.Is(err, errNotYours):
		httpError(w, errOtherOwner.code, errOtherOwner.msg)
	case err != nil:
		r.answer(w, "registering a mailbox", err)
	case created:
		r.log.Info("mailbox registered", "mailbox", short(mailbox))
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// trustOnFirstUse stores key under name unless a key is stored there
// already: created reports the first registration; another stored key is
// errNotYours. Create is atomic on NATS, so of two relays registering at
// once exactly one wins.
func (r *Relay) trustOnFirstUse(ctx context.Context, name string, key []byte) (created bool, err error) {
	_, err = r.owners.Create(ctx, name, key)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, err
	}
	e, err := r.owners.Get(ctx, name)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(e.Value(), key) {
		return false, errNotYours
	}
	return false, nil
}

// authorizeBundle checks a bundle upload: signed by the key in its
// Sealpost-Key header, fresh, unseen, and that key is the one the device's
// bundle was first uploaded with (stored now if this is the first).
func (r *Relay) authorizeBundle(ctx context.Context, req *http.Request, name string, resource, body []byte, s auth.Signed) error {
	kv := req.Header.Values(auth.KeyHeader)
	if len(kv) == 0 {
		return errNoKeyHdr
	}
	if len(kv) > 1 {
		return errBadKeyHdr
	}
	key, err := auth.ParseKey(kv[0])
	if err != nil {
		return errBadKeyHdr
	}
	if !s.Verify(key, req.Method, resource, body) {
		return errBadSig
	}
	if _, err := r.trustOnFirstUse(ctx, name, key); err != nil {
		return err
	}
	return r.remember(ctx, s)
}
