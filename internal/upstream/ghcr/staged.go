package ghcr

import (
	"encoding/json"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// NewStagedVerifier builds the upstream that verifies a staged source's token (staged mode,
// internal/upstream/staged): GHCR's own source is a staged token already, so this is New on
// username and token plus the staged source's other fields ("apiUrl", "checkRepository").
func NewStagedVerifier(username, token string, fields []byte, opts upstream.Options) (*GHCR, error) {
	var f struct {
		APIURL          string `json:"apiUrl,omitempty"`
		CheckRepository string `json:"checkRepository,omitempty"`
	}
	if err := upstream.DecodeSource(fields, ptcsecret.UpstreamGHCR, &f); err != nil {
		return nil, err
	}
	doc, err := json.Marshal(Source{Username: username, Token: token, APIURL: f.APIURL, CheckRepository: f.CheckRepository})
	if err != nil {
		return nil, err
	}
	return New(doc, opts)
}
