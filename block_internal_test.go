package sealpost

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/sealpost/sealpost/internal/blocklist"
)

// TestBlockLimit: Block refuses the sender past MaxBlocked with
// ErrTooLarge and writes nothing; after an Unblock there is room again
// (internal/blocklist TestLimit: the record of MaxBlocked loads back).
func TestBlockLimit(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	var full blocklist.List
	for i := range MaxBlocked {
		full = full.With(Address{User: "u", Device: uint32(i + 1)}, nil, true)
	}
	d := &Device{store: store, blocked: full}
	before := store.Snapshot()
	extra := Sender{Address: Address{User: "v", Device: 1}}
	if err := d.Block(ctx, extra); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Block past MaxBlocked: %v, want ErrTooLarge", err)
	}
	if !maps.EqualFunc(store.Snapshot(), before, bytes.Equal) || d.blocked.Len() != MaxBlocked {
		t.Fatal("a refused Block changed the store or the list")
	}
	if err := d.Unblock(ctx, Sender{Address: Address{User: "u", Device: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Block(ctx, extra); err != nil {
		t.Fatalf("Block after an Unblock: %v", err)
	}
}
