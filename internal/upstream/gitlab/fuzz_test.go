package gitlab_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamfuzz"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
)

// FuzzParseSource checks gitlab.ParseSource on arbitrary bytes: no panic, and no error ever
// quotes a string value of the input (a source secret is all credentials) — except the group
// or project path, which the checkRepository error names by design (a path is not a secret).
func FuzzParseSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse := func(b []byte) error { _, err := gitlab.ParseSource(b); return err }
		err := parse(raw)
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "gitlab-container-registry source secret: ") {
			t.Fatalf("error does not name the source secret: %v", err)
		}
		if v := upstreamfuzz.EchoedValue(raw, err, parse, []string{"groupId", "projectId"}); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}

// fuzzOwnerToken is the source secret's token, planted.
const fuzzOwnerToken = "glpat-PLANTED-owner-token-6a0c"

// FuzzTokenAPI serves fuzzed answers (status, headers such as X-Next-Page or Link, body; a
// first answer and one that repeats) on a group's or project's access-token paths and runs Mint,
// Tokens or Revoke against them. It asserts: no panic; an error says it is GitLab's, is not
// malformed, and never contains the owner's token; a Mint that succeeds returns a usable
// credential named like the label; Tokens returns only live tokens with the asked prefix and
// numeric ids; paging stays bounded; and PRIVATE-TOKEN never leaves the API host (Link headers
// may name any host).
func FuzzTokenAPI(f *testing.F) {
	api := upstreamfuzz.NewAPI(f)
	f.Fuzz(func(t *testing.T, status1 uint16, header1 string, body1 []byte, status2 uint16, body2 []byte, flags uint8) {
		script := []upstreamfuzz.Answer{upstreamfuzz.AnswerOf(status1, header1, body1), upstreamfuzz.AnswerOf(status2, header1, body2)}
		kind, id := "groups", any(42)
		if flags&1 != 0 {
			kind, id = "projects", "acme/app"
		}
		base := "/api/v4/" + kind + "/" + map[string]string{"groups": "42", "projects": "acme/app"}[kind] + "/access_tokens"
		routes := map[string][]upstreamfuzz.Answer{base: script, base + "/99": script}
		raw, _ := json.Marshal(map[string]any{"token": fuzzOwnerToken, kind[:len(kind)-1] + "Id": id, "apiUrl": api.URL()})
		client := api.Reset(routes)
		up, err := gitlab.New(raw, upstream.Options{
			HTTPClient: client, RegistryURL: api.Host(), Standins: api.Standins(),
			Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
			Sleep: func(context.Context, time.Duration) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"GitLab", "gitlab-container-registry"}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		const prefix = "ptc-0123456789ab-"
		switch (flags >> 1) % 3 {
		case 0:
			m, err := up.Mint(ctx, upstream.MintRequest{SecretName: "ecr-pullthroughcache/gl", VersionID: "v", Label: prefix + "v"})
			if err != nil {
				upstreamfuzz.CheckError(t, err, names, fuzzOwnerToken)
			} else if strings.TrimSpace(m.Credential.AccessToken) == "" || m.Credential.Username == "" || m.Token.ID == "" {
				t.Fatalf("Mint succeeded with an unusable credential (username %q, id %q)", m.Credential.Username, m.Token.ID)
			}
		case 1:
			toks, err := up.Tokens(ctx, prefix)
			if err != nil {
				upstreamfuzz.CheckError(t, err, names, fuzzOwnerToken)
			}
			for _, tok := range toks {
				if _, perr := strconv.ParseUint(tok.ID, 10, 63); !strings.HasPrefix(tok.Label, prefix) || perr != nil {
					t.Fatalf("Tokens returned %+v: outside the prefix or not a GitLab id", tok)
				}
			}
		case 2:
			if err := up.Revoke(ctx, upstream.Token{ID: "99", Label: prefix + "old"}); err != nil {
				upstreamfuzz.CheckError(t, err, names, fuzzOwnerToken)
			}
		}
		api.Check(t, 100*5+10)
	})
}
