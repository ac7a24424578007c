package acr_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamfuzz"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

// FuzzParseSource checks acr.ParseSource on arbitrary bytes: no panic, and no error ever quotes
// a string value of the input (a source secret is all credentials). The token id's parts may be
// named (an ARM id is not a secret), never a whole value.
func FuzzParseSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse := func(b []byte) error { _, err := acr.ParseSource(b); return err }
		err := parse(raw)
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "azure-container-registry source secret: ") {
			t.Fatalf("error does not name the source secret: %v", err)
		}
		if v := upstreamfuzz.EchoedValue(raw, err, parse, nil); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}

// Planted values and fixed parts of the fake Azure.
const (
	fuzzClientSecret = "PLANTED-acr-client-secret-4b9d"
	fuzzARMToken     = "PLANTED-arm-bearer-token-02fe"
	fuzzTenant       = "11111111-2222-3333-4444-555555555555"
	fuzzTokenID      = "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/ptc-token"
	fuzzGeneratePath = "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/generateCredentials"
)

// FuzzTokenAPI serves fuzzed answers (status, headers, body; a first answer and one that
// repeats) on ARM's generateCredentials path and on the long-running-operation paths its
// headers may name (/op, /result), optionally on Entra ID's token path too, and runs Mint with
// each shape of AWSCURRENT's staging labels. It asserts: no panic; an error says it is Azure's,
// is not malformed, and never contains the client secret or the ARM token; a Mint that succeeds
// returns a usable password and exactly one slot label; polling stays bounded; and the bearer
// token is never sent off the management host.
func FuzzTokenAPI(f *testing.F) {
	api := upstreamfuzz.NewAPI(f)
	f.Fuzz(func(t *testing.T, status1 uint16, header1 string, body1 []byte, status2 uint16, body2 []byte, flags uint8) {
		script := []upstreamfuzz.Answer{upstreamfuzz.AnswerOf(status1, header1, body1), upstreamfuzz.AnswerOf(status2, header1, body2)}
		routes := map[string][]upstreamfuzz.Answer{
			"/" + fuzzTenant + "/oauth2/v2.0/token": {{Status: 200, Body: []byte(`{"access_token":"` + fuzzARMToken + `","expires_in":3599}`)}},
			fuzzGeneratePath:                        script,
			"/op":                                   script[1:],
			"/result":                               script[1:],
		}
		if flags&1 != 0 {
			routes["/"+fuzzTenant+"/oauth2/v2.0/token"] = script
		}
		raw, _ := json.Marshal(map[string]any{
			"tenantId": fuzzTenant, "clientId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "clientSecret": fuzzClientSecret,
			"tokenId": fuzzTokenID, "authorityUrl": api.URL(), "managementUrl": api.URL(),
		})
		client := api.Reset(routes)
		up, err := acr.New(raw, upstream.Options{
			HTTPClient: client, RegistryURL: api.Host(), Standins: api.Standins(),
			Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
			Sleep: func(context.Context, time.Duration) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		stages := [][]string{nil, {"AWSCURRENT", acr.StagePassword1}, {"AWSCURRENT", acr.StagePassword2}, {"AWSCURRENT"}}[(flags>>1)&3]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, err := up.Mint(ctx, upstream.MintRequest{SecretName: "ecr-pullthroughcache/acr", VersionID: "v", Label: "ptc-0123456789ab-v", CurrentStages: stages})
		if err != nil {
			upstreamfuzz.CheckError(t, err, []string{"Azure Resource Manager", "Microsoft Entra ID", "azure-container-registry", "ACR"}, fuzzClientSecret, fuzzARMToken)
		} else {
			if strings.TrimSpace(m.Credential.AccessToken) == "" || m.Credential.Username == "" {
				t.Fatalf("Mint succeeded with an unusable credential (username %q)", m.Credential.Username)
			}
			if len(m.Stages) != 1 || (m.Stages[0] != acr.StagePassword1 && m.Stages[0] != acr.StagePassword2) || m.Stages[0] != acr.StageFor(m.Token.ID) {
				t.Fatalf("Mint succeeded with stages %v for slot %q", m.Stages, m.Token.ID)
			}
			if slices.Contains(stages, m.Stages[0]) {
				t.Fatalf("Mint regenerated %s, the slot AWSCURRENT uses", m.Token.ID)
			}
		}
		api.Check(t, 2000)
	})
}
