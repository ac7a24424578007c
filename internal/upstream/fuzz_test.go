package upstream_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// fuzzDst has a field of every kind a source secret uses.
type fuzzDst struct {
	Username string               `json:"username"`
	Password string               `json:"password"`
	Days     int                  `json:"days"`
	Scopes   []string             `json:"scopes"`
	Nested   struct{ URL string } `json:"nested"`
	ID       json.RawMessage      `json:"id"`
	Flag     *bool                `json:"flag"`
}

// FuzzDecodeSource checks the strict source-secret decoder on arbitrary bytes: no panic; every
// error starts with the registry's name and never quotes a string value of the input (see
// fuzzEchoedValue); a success means the input was exactly one valid JSON object.
func FuzzDecodeSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse := func(b []byte) error {
			var d fuzzDst
			return upstream.DecodeSource(b, "docker-hub", &d)
		}
		err := parse(raw)
		if err == nil {
			var v map[string]any
			if !json.Valid(raw) || json.Unmarshal(raw, &v) != nil {
				t.Fatalf("accepted %q, which is not exactly one JSON object", raw)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "docker-hub source secret: ") {
			t.Fatalf("error does not start with the registry: %v", err)
		}
		if v := fuzzEchoedValue(raw, err, parse, nil); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}

// fuzzEchoedValue returns a string value of the JSON input (6 bytes or longer) that err quotes,
// or "". Every string value the error contains is confirmed with a canary: the input is parsed
// again with that one value replaced by a look-alike of the same length and character classes
// (letters and digits shifted by one), and the value counts as quoted only when the new error
// contains the look-alike too. That tells a quoted value from one that merely coincides with
// the message's own words ("secret", "password") or with a part of another value the parser may
// name (a URL's host). Values under the keys in exempt are identifiers the parser quotes by
// design. Keys are never checked: "unknown field" names them on purpose.
func fuzzEchoedValue(raw []byte, err error, parse func([]byte) error, exempt []string) string {
	msg := err.Error()
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		obj, wantKey bool
		key          string
	}
	var stack []frame
	for {
		before := dec.InputOffset()
		tok, terr := dec.Token()
		if terr != nil {
			return ""
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].obj && stack[top].wantKey
		key := ""
		if len(stack) > 0 {
			key = stack[0].key
		}
		valueDone := false
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				stack = append(stack, frame{obj: v == '{', wantKey: v == '{'})
				continue
			}
			stack = stack[:top]
			valueDone = true
		case string:
			if isKey {
				stack[top].wantKey, stack[top].key = false, v
				continue
			}
			valueDone = true
			end := int(dec.InputOffset())
			start := int(before) + bytes.IndexByte(raw[before:end], '"')
			if len(v) >= 6 && strings.Contains(msg, v) && !slices.Contains(exempt, key) {
				canary := fuzzCanary(v)
				lit, _ := json.Marshal(canary)
				mutated := append(append(append([]byte{}, raw[:start]...), lit...), raw[end:]...)
				if canary != v && strings.Count(string(mutated), canary) == 1 {
					if err2 := parse(mutated); err2 != nil && strings.Contains(err2.Error(), canary) {
						return v
					}
				}
			}
		default:
			valueDone = true
		}
		if valueDone && len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// fuzzCanary shifts every ASCII letter and digit by one, keeping case and class.
func fuzzCanary(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == 'z':
			return 'a'
		case r == 'Z':
			return 'A'
		case r == '9':
			return '0'
		case r >= 'a' && r < 'z', r >= 'A' && r < 'Z', r >= '0' && r < '9':
			return r + 1
		}
		return r
	}, s)
}
