package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// BindingField is the field of a source secret's JSON that lists the managed secrets allowed
// to use it: exact names, or prefixes ending in "/", all under ecr-pullthroughcache/.
//
// It lives in the source secret's value because only the source's owner may write that value:
// whoever can tag (or create) an ecr-pullthroughcache/ secret — and so point its
// ptc:source-secret tag anywhere — cannot, and neither function's role may write a source
// secret (tests/template checks that). A tag on the source would serve as well but cost a
// DescribeSecret per rotation; the value is read anyway.
const BindingField = "allowedSecrets"

// Binding is a parsed BindingField.
type Binding []string

// ParseBinding reads BindingField from a source secret's JSON. A document without the field
// has an empty Binding, which allows nothing. Errors name the field, never a value.
func ParseBinding(doc []byte) (Binding, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return nil, nil // not an object: the provider's own decoding reports it
	}
	raw, ok := obj[BindingField]
	if !ok {
		return nil, nil
	}
	var b Binding
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("field %q must be a list of managed secret names or prefixes ending in \"/\"", BindingField)
	}
	for i, p := range b {
		if !strings.HasPrefix(p, ptcsecret.Prefix) {
			return nil, fmt.Errorf("field %q entry %d must start with %q", BindingField, i, ptcsecret.Prefix)
		}
	}
	return b, nil
}

// Allows reports whether the managed secret name may use the source: an entry equal to the name,
// or an entry ending in "/" that the name starts with.
func (b Binding) Allows(name string) bool {
	for _, p := range b {
		if p == name || (strings.HasSuffix(p, "/") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}

// withoutBinding returns doc without BindingField, for the providers' strict decoding (which
// knows only its registry's fields). A document that is not an object, or lacks the field, is
// returned unchanged so that the provider's error for it stays exact.
func withoutBinding(doc []byte) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return doc
	}
	if _, ok := obj[BindingField]; !ok {
		return doc
	}
	delete(obj, BindingField)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return doc
	}
	return bytes.TrimSpace(buf.Bytes())
}

// checkBinding refuses a managed secret the source does not list.
func checkBinding(doc []byte, req SourceRequest) error {
	b, err := ParseBinding(doc)
	if err != nil {
		return unusable{fmt.Errorf("%s %s: %w", req.Name, req.ARN, err)}
	}
	if !b.Allows(req.ForSecret) {
		return unusable{fmt.Errorf("%s %s does not allow managed secret %s: add %q (or a prefix of it ending in \"/\") to the %q list in the source secret's value; only whoever may write the source secret can (README, \"Source binding\")",
			req.Name, req.ARN, kit.Truncate(req.ForSecret, 512), kit.Truncate(req.ForSecret, 512), BindingField)}
	}
	return nil
}
