package dockerhub_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamfuzz"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// FuzzParseSource checks dockerhub.ParseSource on arbitrary bytes: no panic, and no error ever
// quotes a string value of the input (a source secret is all credentials).
func FuzzParseSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse := func(b []byte) error { _, err := dockerhub.ParseSource(b); return err }
		err := parse(raw)
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "docker-hub source secret: ") {
			t.Fatalf("error does not name the source secret: %v", err)
		}
		if v := upstreamfuzz.EchoedValue(raw, err, parse, nil); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}

// Planted values of the fake Docker Hub.
const (
	fuzzPassword = "PLANTED-hub-password-31c7"
	fuzzSession  = "PLANTED-hub-session-jwt-8e2a"
	fuzzTOTP     = "JBSWY3DPEHPK3PXP"
)

// FuzzTokenAPI serves fuzzed answers (status, headers, body; a first answer and one that
// repeats) on Docker Hub's access-token path, optionally on the login path too, and runs Mint
// and Tokens against them. It asserts: no panic; an error says it is Docker Hub's, is not
// malformed, and never contains the account password or the session token; a Mint that
// succeeds returns a usable credential; Tokens returns only tokens with the asked prefix; the
// calls made stay bounded; and no credential is ever sent anywhere but the API host.
func FuzzTokenAPI(f *testing.F) {
	api := upstreamfuzz.NewAPI(f)
	f.Fuzz(func(t *testing.T, status1 uint16, header1 string, body1 []byte, status2 uint16, body2 []byte, flags uint8) {
		script := []upstreamfuzz.Answer{upstreamfuzz.AnswerOf(status1, header1, body1), upstreamfuzz.AnswerOf(status2, header1, body2)}
		routes := map[string][]upstreamfuzz.Answer{
			"/v2/users/login":             {{Status: 200, Body: []byte(`{"token":"` + fuzzSession + `"}`)}},
			"/v2/users/2fa-login":         {{Status: 200, Body: []byte(`{"token":"` + fuzzSession + `"}`)}},
			"/v2/access-tokens":           script,
			"/v2/orgs/acme/access-tokens": script,
		}
		if flags&1 != 0 {
			routes["/v2/users/login"] = script
		}
		src := map[string]any{"username": "alice", "password": fuzzPassword, "apiUrl": api.URL()}
		if flags&2 != 0 {
			src["organization"] = "acme"
		}
		if flags&4 != 0 {
			src["totpSecret"] = fuzzTOTP
		}
		raw, _ := json.Marshal(src)
		client := api.Reset(routes)
		up, err := dockerhub.New(raw, upstream.Options{
			HTTPClient: client, RegistryURL: api.Host(), Standins: api.Standins(),
			Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
			Sleep: func(context.Context, time.Duration) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		label := "ptc-0123456789ab-11111111-1111-4111-8111-111111111111"
		if flags&8 == 0 {
			m, err := up.Mint(ctx, upstream.MintRequest{SecretName: "ecr-pullthroughcache/hub", VersionID: "v", Label: label})
			if err != nil {
				upstreamfuzz.CheckError(t, err, []string{"Docker Hub", "docker-hub"}, fuzzPassword, fuzzSession, fuzzTOTP)
			} else if strings.TrimSpace(m.Credential.AccessToken) == "" || m.Credential.Username == "" {
				t.Fatalf("Mint succeeded with an unusable credential (username %q)", m.Credential.Username)
			}
		} else {
			toks, err := up.Tokens(ctx, "ptc-0123456789ab-")
			if err != nil {
				upstreamfuzz.CheckError(t, err, []string{"Docker Hub", "docker-hub"}, fuzzPassword, fuzzSession, fuzzTOTP)
			}
			for _, tok := range toks {
				if !strings.HasPrefix(tok.Label, "ptc-0123456789ab-") {
					t.Fatalf("Tokens returned %q, outside the asked prefix", tok.Label)
				}
			}
		}
		api.Check(t, 110*5)
	})
}
