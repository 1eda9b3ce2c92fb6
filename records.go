package sealpost

import (
	"context"

	"github.com/sealpost/sealpost/internal/record"
)

// Every record a Device writes ends with a checksum of its key and value
// (internal/record has the layout and the reason).

// putRecord adds value to b under key, with its checksum appended (in
// place when value has room for it; value itself is unchanged).
func putRecord(b *Batch, key string, value []byte) {
	b.Put(key, record.Frame(value, record.SumScratch(b.key[:], key, value)))
}

// getRecord reads key and checks its checksum. It returns the store's
// error (ErrNotFound when absent) or ErrMalformed for a corrupt record.
func getRecord(ctx context.Context, s Store, key string) ([]byte, error) {
	raw, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return record.Unframe(key, raw)
}
