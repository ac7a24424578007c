package provision

import (
	"context"
	"slices"
	"testing"
)

// Every string of a source secret is registered for redaction except the endpoint fields, and a
// secret that looks like a URL is no exception (it used to be skipped by its "http" prefix).
func TestSourceSecretsRegistersEverySecretField(t *testing.T) {
	var got []string
	p := &Provisioner{OnSecret: func(_ context.Context, values ...string) { got = append(got, values...) }}
	p.sourceSecrets(context.Background(), `{"username":"acme-bot","password":"https-looking-PLANTED-pw","totpSecret":"JBSWY3DPEHPK3PXP","apiUrl":"https://hub.example","tokenLifetimeDays":30}`)
	for _, want := range []string{"acme-bot", "https-looking-PLANTED-pw", "JBSWY3DPEHPK3PXP"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q was not registered for redaction (got %d values)", want, len(got))
		}
	}
	if slices.Contains(got, "https://hub.example") {
		t.Error("the endpoint field was registered: errors could no longer name the host")
	}
}

// A staged source's "mode" is a fixed word, not a secret: registered, "staged" would be scrubbed
// from every log line and a physical id containing it refused. Its token still is a secret.
func TestSourceSecretsLeavesTheModeWordAlone(t *testing.T) {
	var got []string
	p := &Provisioner{OnSecret: func(_ context.Context, values ...string) { got = append(got, values...) }}
	p.sourceSecrets(context.Background(), `{"mode":"staged","username":"acme-org","token":"dckr_oat_PLANTED-staged"}`)
	if slices.Contains(got, "staged") {
		t.Error(`"staged" (the mode) was registered for redaction`)
	}
	if !slices.Contains(got, "dckr_oat_PLANTED-staged") {
		t.Error("the staged token was not registered for redaction")
	}
}
