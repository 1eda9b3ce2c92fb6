package kdf

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"strings"
	"testing"
)

// TestLabelsDistinct parses labels.go, so that a label added later is
// checked without editing this test: every label is a string constant,
// starts with "sealpost v1 ", and no two are equal or one a prefix of
// another (labels are sometimes followed by unprefixed data).
func TestLabelsDistinct(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "labels.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{}
	info := &types.Info{Defs: map[*ast.Ident]types.Object{}}
	if _, err := conf.Check("kdf", fset, []*ast.File{file}, info); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for id, obj := range info.Defs {
		c, ok := obj.(*types.Const)
		if !ok {
			continue
		}
		if c.Val().Kind() != constant.String {
			t.Errorf("%s is not a string constant", id.Name)
			continue
		}
		v := constant.StringVal(c.Val())
		if !strings.HasPrefix(v, "sealpost v1 ") {
			t.Errorf("%s = %q lacks the versioned prefix", id.Name, v)
		}
		if other, dup := labels[v]; dup {
			t.Errorf("%s and %s share the label %q", id.Name, other, v)
		}
		labels[v] = id.Name
	}
	if len(labels) < 10 {
		t.Fatalf("found only %d labels; is labels.go parsed?", len(labels))
	}
	for a, an := range labels {
		for b, bn := range labels {
			if a != b && strings.HasPrefix(b, a) {
				t.Errorf("label %s (%q) is a prefix of %s (%q)", an, a, bn, b)
			}
		}
	}
}

func TestKeyDistinguishesLabelsAndContext(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := Key(secret, nil, LabelSessionSecret, nil, 32)
	b := Key(secret, nil, LabelSessionConfirm, nil, 32)
	c := Key(secret, nil, LabelSessionSecret, []byte{1}, 32)
	if string(a) == string(b) || string(a) == string(c) {
		t.Fatal("different labels or contexts produced the same key")
	}
	if m1, m2 := MAC(secret, LabelSessionConfirm, []byte("x")), MAC(secret, LabelSessionConfirm, []byte("y")); m1 == m2 {
		t.Fatal("MAC ignores its input")
	}
	if h1, h2 := Hash(LabelFingerprint, []byte("x")), Hash(LabelSafetyNumber, []byte("x")); h1 == h2 {
		t.Fatal("Hash ignores its label")
	}
}
