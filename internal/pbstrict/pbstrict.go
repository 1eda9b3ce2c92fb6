// Package pbstrict decodes protobuf messages strictly: unknown fields
// anywhere in the message are an error, so that a message has one meaning
// and a newer format cannot be half-read by an older build.
package pbstrict

import (
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrUnknownField reports a field this build does not know.
var ErrUnknownField = errors.New("unknown protobuf field")

// Unmarshal decodes b into m and rejects unknown fields at any depth.
func Unmarshal(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	if hasUnknown(m.ProtoReflect()) {
		return ErrUnknownField
	}
	return nil
}

// Marshal encodes m deterministically.
func Marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = hasUnknown(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				found = hasUnknown(mv.Message())
				return !found
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			found = hasUnknown(v.Message())
		}
		return !found
	})
	return found
}

// Unknown reports whether m holds unknown fields at any depth. Decoders of
// versioned records unmarshal with proto.Unmarshal, check the version (so a
// newer record is ErrUnsupportedVersion, not malformed), then call Unknown.
func Unknown(m proto.Message) bool { return hasUnknown(m.ProtoReflect()) }

// MarshalRoom encodes m deterministically into a buffer with room for
// extra more bytes, so a caller can append a trailer without a copy.
func MarshalRoom(m proto.Message, extra int) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend(make([]byte, 0, proto.Size(m)+extra), m)
}
