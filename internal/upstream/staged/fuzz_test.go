package staged_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream/staged"
)

// FuzzParseSource: any document either parses into a non-empty credential whose other fields
// are one JSON object, or is refused with an error that quotes no (PLANTED) value of it.
func FuzzParseSource(f *testing.F) {
	for _, seed := range []string{
		`{"mode":"staged","username":"u","token":"PLANTEDtok","expiresAt":"2026-03-01","checkRepository":"a/b"}`,
		`{"mode":"staged","username":"u","token":"PLANTEDtok","allowedSecrets":["ecr-pullthroughcache/"]}`,
		`{"mode":"staged","username":"PLANTEDtok","token":1}`,
		`{"mode":"mint","username":"u","token":"PLANTEDtok"}`,
		`{"mode":"staged","username":"u","token":"PLANTEDtok","expiresAt":"PLANTEDtok"}`,
		`[]`, `null`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := staged.ParseSource([]byte(doc), "docker-hub")
		if err != nil {
			var m map[string]any
			if json.Unmarshal([]byte(doc), &m) == nil {
				for k, v := range m {
					// Values marked PLANTED stand for secrets (the messages' own words never hold it).
					if str, ok := v.(string); ok && strings.Contains(str, "PLANTED") && strings.Contains(err.Error(), str) {
						t.Fatalf("error %q quotes field %q's value", err, k)
					}
				}
			}
			return
		}
		if strings.TrimSpace(s.Username) == "" || s.Token == "" || strings.TrimSpace(s.Token) != s.Token {
			t.Fatalf("accepted an empty or padded credential from %q", doc)
		}
		var rest map[string]json.RawMessage
		if json.Unmarshal(s.Fields, &rest) != nil || rest == nil {
			t.Fatalf("fields %q are not one JSON object", s.Fields)
		}
		for _, k := range []string{"mode", "username", "token", "expiresAt", "allowedSecrets"} {
			if _, ok := rest[k]; ok {
				t.Fatalf("field %q left in the registry's fields", k)
			}
		}
	})
}
