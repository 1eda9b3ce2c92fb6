package sealpost

import (
	"context"

	"github.com/sealpost/sealpost/internal/seen"
)

// seenFor returns the accepted starts of a signed prekey (internal/seen),
// reading them from the store the first time.
func (d *Device) seenFor(ctx context.Context, signedPrekeyID uint32) (*seen.Starts, error) {
	if s := d.seen[signedPrekeyID]; s != nil {
		return s, nil
	}
	s, err := seen.Load(signedPrekeyID, func(key string) ([]byte, error) { return getRecord(ctx, d.store, key) })
	if err != nil {
		return nil, err
	}
	d.seen[signedPrekeyID] = s
	return s, nil
}
