package ghcr_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamfuzz"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
)

// FuzzParseSource checks ghcr.ParseSource on arbitrary bytes: no panic, and no error ever
// quotes a string value of the input (a source secret is all credentials).
func FuzzParseSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse := func(b []byte) error { _, err := ghcr.ParseSource(b); return err }
		err := parse(raw)
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "github-container-registry source secret: ") {
			t.Fatalf("error does not name the source secret: %v", err)
		}
		if v := upstreamfuzz.EchoedValue(raw, err, parse, nil); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}

// fuzzPAT is the classic PAT a person staged, planted.
const fuzzPAT = "ghp_PLANTEDclassicPAT0123456789abcdef"

// FuzzVerifyAPI covers GHCR's only API call: nothing is minted (Mint hands back the staged
// token), so the fuzzed answers (status, headers such as X-OAuth-Scopes and
// GitHub-Authentication-Token-Expiration, body) are served on GET /user, and optionally on the
// registry's token endpoint. It asserts: no panic; Mint returns exactly the staged credential;
// a Verify error says it is GitHub's (or the login check's), is not malformed, and never
// contains the token; a Verify that succeeds saw read:packages; and the token never leaves the
// test server.
func FuzzVerifyAPI(f *testing.F) {
	api := upstreamfuzz.NewAPI(f)
	f.Fuzz(func(t *testing.T, status1 uint16, header1 string, body1 []byte, status2 uint16, body2 []byte, flags uint8) {
		script := []upstreamfuzz.Answer{upstreamfuzz.AnswerOf(status1, header1, body1), upstreamfuzz.AnswerOf(status2, header1, body2)}
		challenge := http.Header{"Www-Authenticate": {`Bearer realm="` + api.URL() + `/token",service="ghcr.io",scope="repository:octocat/app:pull"`}}
		routes := map[string][]upstreamfuzz.Answer{
			"/user":  script,
			"/v2/":   {{Status: 401, Header: challenge}},
			"/token": {{Status: 200, Body: []byte(`{"token":"registry-jwt"}`)}},
		}
		if flags&1 != 0 {
			routes["/token"] = script[1:]
		}
		raw, _ := json.Marshal(map[string]any{"username": "octocat", "token": fuzzPAT, "apiUrl": api.URL(), "checkRepository": "octocat/app"})
		client := api.Reset(routes)
		up, err := ghcr.New(raw, upstream.Options{
			HTTPClient: client, RegistryURL: api.Host(), Standins: api.Standins(),
			Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
			Sleep: func(context.Context, time.Duration) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, err := up.Mint(ctx, upstream.MintRequest{SecretName: "ecr-pullthroughcache/ghcr", VersionID: "v", Label: "ptc-0123456789ab-v"})
		if err != nil || m.Credential.Username != "octocat" || m.Credential.AccessToken != fuzzPAT {
			t.Fatalf("Mint did not hand back the staged token: %v", err)
		}
		if _, err := up.Verify(ctx, m.Credential); err != nil {
			upstreamfuzz.CheckError(t, err, []string{"github-container-registry", "GitHub", "login check"}, fuzzPAT)
		} else if scopes := strings.Join(script[0].Header.Values("X-OAuth-Scopes"), ","); !strings.Contains(scopes, "read:packages") && !strings.Contains(scopes, "write:packages") {
			t.Fatalf("Verify passed a token whose scopes are %q", scopes)
		}
		api.Check(t, 50)
	})
}
