package pbstrict

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sealpost/sealpost/proto/bundlepb"
)

func TestUnmarshalRejectsUnknownFields(t *testing.T) {
	good, err := Marshal(&bundlepb.Bundle{Version: 1, User: "bob", SignedPrekey: &bundlepb.SignedKey{Id: 3}})
	if err != nil {
		t.Fatal(err)
	}
	var m bundlepb.Bundle
	if err := Unmarshal(good, &m); err != nil {
		t.Fatalf("valid message rejected: %v", err)
	}
	top := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), good...), 99, protowire.VarintType), 1)
	inner := protowire.AppendTag(nil, 77, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 5)
	nested := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), good...), 6, protowire.BytesType), inner)
	for name, raw := range map[string][]byte{"top level": top, "nested": nested} {
		if err := Unmarshal(raw, new(bundlepb.Bundle)); !errors.Is(err, ErrUnknownField) {
			t.Errorf("%s unknown field: got %v, want ErrUnknownField", name, err)
		}
	}
	if err := Unmarshal([]byte{0xff}, new(bundlepb.Bundle)); err == nil {
		t.Error("garbage accepted")
	}
}
