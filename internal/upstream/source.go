package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DecodeSource strictly decodes a source secret's JSON into dst: one JSON object, no unknown
// fields. registry (e.g. "docker-hub") starts every message, which names the field at fault
// and never quotes a value — a source secret is all credentials.
func DecodeSource(raw []byte, registry string, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%s source secret: %s", registry, describeJSONError(err))
	}
	// More alone misses a stray "}" or "]" after the object; any token there is one too many.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s source secret: more than one JSON value (or text after the object); store exactly one object", registry)
	}
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (syntax error at byte %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON (it ends early)"
	case errors.Is(err, io.EOF):
		return "empty; store a JSON object (see the README for this registry's fields)"
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown " + strings.TrimPrefix(err.Error(), "json: ") + " (check the spelling against the README)"
	}
	return "not a JSON object"
}
