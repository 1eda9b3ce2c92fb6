// Package boltstore is a durable sealpost.Store on bbolt (go.etcd.io/bbolt):
// one bucket in one file, one bbolt read-write transaction per Apply.
//
// bbolt commits a transaction by writing the changed pages and then a new
// meta page, and fsyncs both before Update returns; a crash at any point
// leaves either the old or the new state, never a mix. That is exactly the
// all-or-nothing Apply that a sealpost.Device relies on to never lose an
// accepted message nor reuse a key (the crash test in this package kills a
// process in the middle of a stream of Receive calls to check it).
//
// The values a Device writes hold private keys. Open creates the file with
// mode 0600; keep it as private as the device itself.
//
// A bbolt file can be open in one process at a time (Open waits up to
// LockTimeout for the file lock, then fails), and bbolt serialises
// writers, so a Store is safe for concurrent use within the process.
package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost"
	bolt "go.etcd.io/bbolt"
)

// DefaultBucket is the bucket Open keeps a Device's records in.
const DefaultBucket = "sealpost"

// LockTimeout is how long Open waits for another process to release the
// file lock before it gives up. bbolt's default is to wait forever, which
// turns a second copy of a program into a silent hang.
const LockTimeout = 2 * time.Second

// Store is a sealpost.Store on one bucket of a bbolt database.
type Store struct {
	db     *bolt.DB
	bucket []byte
	owned  bool // Close closes db

	// beforeCommit, when set (by tests only), runs inside Apply's
	// transaction after every write; an error from it rolls back.
	beforeCommit func(key string) error
}

var _ sealpost.Store = (*Store)(nil)

// Open opens the bbolt database at path, creating it with mode 0600 if it
// does not exist, and returns a Store on its DefaultBucket. Close the Store
// to close the file.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s, err := New(db, DefaultBucket)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a Store on the named bucket of an open database, creating
// the bucket if needed. Several Stores (for example a Device's and an
// app's own) may share one database on different buckets. Closing such a
// Store does not close db.
func New(db *bolt.DB, bucket string) (*Store, error) {
	if bucket == "" {
		return nil, errors.New("boltstore: empty bucket name")
	}
	name := []byte(bucket)
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: bucket %q: %w", bucket, err)
	}
	return &Store{db: db, bucket: name}, nil
}

// DB returns the underlying database, for apps that keep their own data
// in other buckets of the same file.
func (s *Store) DB() *bolt.DB { return s.db }

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return s.db.Close()
}

// Get returns a copy of the value at key, or an error matching
// sealpost.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return fmt.Errorf("boltstore: bucket %q is gone", s.bucket)
		}
		// A cursor tells an empty value from an absent key; Bucket.Get
		// does not. The slices are valid only inside the transaction.
		k, v := b.Cursor().Seek([]byte(key))
		if key == "" || k == nil || !bytes.Equal(k, []byte(key)) {
			return fmt.Errorf("%w: %q", sealpost.ErrNotFound, key)
		}
		out = append([]byte{}, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Apply writes every put and delete of the batch in one bbolt transaction:
// all of them, or none when it returns an error (for example a key bbolt
// refuses: empty or over bolt.MaxKeySize).
func (s *Store) Apply(ctx context.Context, batch *sealpost.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return fmt.Errorf("bucket %q is gone", s.bucket)
		}
		return batch.Each(func(key string, value []byte, deleted bool) error {
			var err error
			if deleted {
				err = b.Delete([]byte(key))
			} else {
				err = b.Put([]byte(key), value)
			}
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			if s.beforeCommit != nil {
				return s.beforeCommit(key)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("boltstore: apply: %w", err)
	}
	return nil
}
