// Package staged is the engine mode every upstream can run in when nothing may mint: the source
// secret holds the NEXT token a person (or their own provisioning) made,
//
//	{"mode": "staged", "username": "…", "token": "…", "expiresAt": "2026-03-01" (optional),
//	 "checkRepository": "…" and the registry's other verify fields (optional),
//	 "allowedSecrets": [...]}
//
// and each rotation verifies it at the upstream's registry, promotes it and reports its days to
// expiry. Nothing is minted and nothing is revoked: the token belongs to whoever made it. Staging
// the token that is already current is not an error — the rotation re-verifies it and reports
// its expiry again, so a frequent schedule keeps the TokenDaysToExpiry alarm current.
//
// The expiry comes from the vendor where its answer tells it (GHCR's
// GitHub-Authentication-Token-Expiration header), else from "expiresAt", else it is unknown —
// which is itself a warning in the log, and no TokenDaysToExpiry is emitted.
//
// Wrap turns a registry's Provider into one that runs this mode when the source says
// "mode": "staged" and its own mode otherwise; the registry supplies a verify-only upstream
// (NewVerifier) that reuses its own Verify, or OCI for the registry's plain token handshake.
package staged

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Mode is the value of the source secret's "mode" field that selects staged mode.
const Mode = "staged"

// ModeField is the source secret field that names the mode.
const ModeField = "mode"

// Source is a staged source secret, parsed.
type Source struct {
	// Username and Token are the staged credential, stored as the managed secret's value.
	Username, Token string
	// ExpiresAt is what the person said about the token's expiry ("expiresAt"); zero: not said.
	ExpiresAt time.Time
	// Fields is the JSON object of every other field (checkRepository, endpoint overrides): the
	// registry's verifier decodes it strictly.
	Fields []byte
}

// Verifier proves a credential at the registry: the part of upstream.Upstream staged mode uses.
type Verifier interface {
	Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error)
}

// NewVerifier builds a registry's verify-only upstream for a staged source.
type NewVerifier func(src Source, opts upstream.Options) (Verifier, error)

// IsStaged reports whether a source secret's JSON selects staged mode. A document that is not a
// JSON object, or has no "mode", is not staged (the registry's own parser reports it).
func IsStaged(doc []byte) bool {
	var m struct {
		Mode *string `json:"mode"`
	}
	if json.Unmarshal(doc, &m) != nil || m.Mode == nil {
		return false
	}
	return *m.Mode == Mode
}

// ParseSource reads a staged source secret for registry. Errors name the field, never a value.
func ParseSource(raw []byte, registry string) (Source, error) {
	prefix := registry + " source secret (staged mode): "
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Source{}, errors.New(prefix + "not a JSON object")
	}
	str := func(name string, required bool) (string, error) {
		r, ok := obj[name]
		delete(obj, name)
		if !ok {
			if required {
				return "", fmt.Errorf(prefix+"field %q is required", name)
			}
			return "", nil
		}
		var s string
		if json.Unmarshal(r, &s) != nil {
			return "", fmt.Errorf(prefix+"field %q must be a string", name)
		}
		return s, nil
	}
	mode, err := str(ModeField, true)
	if err != nil {
		return Source{}, err
	}
	if mode != Mode {
		return Source{}, fmt.Errorf(prefix+"field %q must be %q", ModeField, Mode)
	}
	var s Source
	if s.Username, err = str("username", true); err != nil {
		return Source{}, err
	}
	if strings.TrimSpace(s.Username) == "" {
		return Source{}, errors.New(prefix + `field "username" is empty; give the registry login name of the token`)
	}
	if s.Token, err = str("token", true); err != nil {
		return Source{}, err
	}
	if strings.TrimSpace(s.Token) == "" || strings.TrimSpace(s.Token) != s.Token {
		return Source{}, errors.New(prefix + `field "token" must be the token alone, without surrounding white space`)
	}
	exp, err := str("expiresAt", false)
	if err != nil {
		return Source{}, err
	}
	if exp != "" {
		if s.ExpiresAt, err = parseExpiry(exp); err != nil {
			return Source{}, errors.New(prefix + `field "expiresAt" must be a date (2026-03-01) or an RFC 3339 time (2026-03-01T12:00:00Z)`)
		}
	}
	delete(obj, upstream.BindingField) // FromSource checks it
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return Source{}, errors.New(prefix + "not a JSON object")
	}
	s.Fields = bytes.TrimSpace(buf.Bytes())
	return s, nil
}

// parseExpiry reads a date (the token dies at midnight UTC that day, as GitLab and Docker Hub
// date their tokens) or an RFC 3339 time.
func parseExpiry(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", v)
}

// Staged is the upstream of a staged source: it hands out the staged token and verifies it with
// the registry's verifier. It implements upstream.Upstream.
type Staged struct {
	registry string
	src      Source
	v        Verifier
	opts     upstream.Options
}

var _ upstream.Upstream = (*Staged)(nil)

// New builds the staged upstream of registry from a staged source secret.
func New(registry string, doc []byte, opts upstream.Options, nv NewVerifier) (*Staged, error) {
	src, err := ParseSource(doc, registry)
	if err != nil {
		return nil, err
	}
	v, err := nv(src, opts)
	if err != nil {
		return nil, err
	}
	return &Staged{registry: registry, src: src, v: v, opts: opts}, nil
}

// Registry implements upstream.Upstream.
func (s *Staged) Registry() string { return s.registry }

// Mint implements upstream.Upstream without minting: it returns the staged token. When that is
// the token already current, the rotation simply re-verifies it.
func (s *Staged) Mint(_ context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	s.opts.Log().Info("staged mode: taking the token a person put in the source secret; nothing is minted",
		"upstream", s.registry, "username", s.src.Username, "token_label", req.Label)
	return upstream.Minted{
		Credential: upstream.Credential{Username: s.src.Username, AccessToken: s.src.Token},
		Token:      upstream.Token{Label: req.Label, ExpiresAt: s.src.ExpiresAt},
	}, nil
}

// Tokens implements upstream.Upstream: nothing was minted, so nothing is ours to revoke.
func (s *Staged) Tokens(context.Context, string) ([]upstream.Token, error) { return nil, nil }

// Revoke implements upstream.Upstream as a no-op: the token belongs to whoever made it.
func (s *Staged) Revoke(context.Context, upstream.Token) error { return nil }

// Verify implements upstream.Upstream: the registry's own check, then the expiry — the vendor's
// when its answer told one, else "expiresAt" when cred is the staged token, else unknown, which
// is logged as a warning.
func (s *Staged) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	v, err := s.v.Verify(ctx, cred)
	if err != nil {
		return upstream.Verification{}, err
	}
	if v.ExpiresAt.IsZero() && !s.src.ExpiresAt.IsZero() && cred.AccessToken == s.src.Token {
		v.ExpiresAt = s.src.ExpiresAt
	}
	if v.ExpiresAt.IsZero() {
		s.opts.Log().Warn(`staged mode: the token's expiry is unknown (the registry does not tell it, and the source secret has no "expiresAt"); nothing can page before it lapses: set "expiresAt" in the source secret`,
			"upstream", s.registry, "username", cred.Username)
	}
	return v, nil
}

// Wrap returns p running staged mode when its source secret says "mode": "staged" (verified by
// nv) and p's own mode otherwise.
func Wrap(p upstream.Provider, nv NewVerifier) upstream.Provider {
	own := p.New
	p.New = func(doc []byte, opts upstream.Options) (upstream.Upstream, error) {
		if IsStaged(doc) {
			return New(p.Registry, doc, opts, nv)
		}
		return own(doc, opts)
	}
	return p
}

// OCI is the verifier of a registry whose Verify is its plain OCI token handshake: a pull scope
// on "checkRepository" (default defaultRepo) at the rule's registry (default defaultRegistry),
// which must be one of registryHosts; the handshake reaches only registryHosts and realmHosts
// (pinned transport). The staged source may carry only that field besides the staged
// credential.
func OCI(registry string, registryHosts, realmHosts pinned.Hosts, defaultRegistry, defaultRepo string) NewVerifier {
	return func(src Source, opts upstream.Options) (Verifier, error) {
		var f struct {
			CheckRepository string `json:"checkRepository"`
		}
		if err := upstream.DecodeSource(src.Fields, registry, &f); err != nil {
			return nil, err
		}
		if f.CheckRepository == "" {
			f.CheckRepository = defaultRepo
		}
		if f.CheckRepository == "" {
			return nil, fmt.Errorf(`%s source secret (staged mode): field "checkRepository" is required (a repository the token may pull)`, registry)
		}
		reg, err := opts.LoginRegistry(registryHosts, defaultRegistry, "")
		if err != nil {
			return nil, err
		}
		return ociVerifier{reg: reg, repo: f.CheckRepository, opts: opts, hosts: registryHosts.Union(realmHosts)}, nil
	}
}

type ociVerifier struct {
	reg, repo string
	opts      upstream.Options
	hosts     pinned.Hosts
}

func (o ociVerifier) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	err := registryauth.Check(ctx, o.opts.Client(o.hosts), registryauth.Target{Registry: o.reg, Repository: o.repo},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
	return upstream.Verification{}, err
}
