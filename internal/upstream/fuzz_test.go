package upstream_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamfuzz"

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
// upstreamfuzz.EchoedValue); a success means the input was exactly one valid JSON object.
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
		if v := upstreamfuzz.EchoedValue(raw, err, parse, nil); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}
