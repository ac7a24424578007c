package upstream

import (
	"strings"
	"testing"
)

func TestDecodeSourceNamesTheProblemNeverTheValue(t *testing.T) {
	type src struct {
		Username string `json:"username"`
		Port     int    `json:"port"`
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"username":"PLANTED-value-1"}`, ""},
		{``, "empty; store a JSON object"},
		{`{"username": "PLANTED-value-2"`, "it ends early"},
		{`{"username": PLANTED-value-3}`, "syntax error at byte"},
		{`[1, "PLANTED-value-4"]`, "not a JSON object"},
		{`{"port": "PLANTED-value-5"}`, `field "port" must be a int`},
		{`{"pasword": "PLANTED-value-6"}`, `unknown field "pasword"`},
		{`{"username":"a"} {"username":"PLANTED-value-7"}`, "more than one JSON value"},
	} {
		var s src
		err := DecodeSource([]byte(tc.raw), "docker-hub", &s)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.raw, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "docker-hub source secret: ") {
			t.Errorf("%s: got %v, want %q", tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "PLANTED") {
			t.Errorf("%s: the error quotes the value: %v", tc.raw, err)
		}
	}
}
