// Package stsemu emulates the part of AWS STS and IAM outbound identity federation the
// federated upstreams use: sts:GetWebIdentityToken, and the account's issuer with its OpenID
// discovery document and JWKS.
//
// GetWebIdentityToken is served in STS's awsQuery protocol, as the SDK and the aws CLI speak it:
// POST / with a form body (Action=GetWebIdentityToken, Version=2011-06-15, Audience.member.N,
// SigningAlgorithm, DurationSeconds, Tags.member.N.Key/Value) signed with Signature Version 4
// for service "sts" in the emulator's Region (checked with emukit.VerifySigV4: an unknown key
// or a wrong signature is refused as STS refuses it), answered in XML in the 2011-06-15
// namespace. It checks what the API reference says: 1–10 audiences, SigningAlgorithm RS256 or
// ES384 (required), DurationSeconds 60–3600 (default 300), and answers
// OutboundWebIdentityFederationDisabledException (HTTP 403) while federation is off in the
// account (SetEnabled).
//
// The token is a real JWT signed with the emulator's RSA-2048 (RS256) or P-384 (ES384) key, with
// the claims AWS documents ("Understanding token claims", IAM User Guide): iss (the issuer
// URL), sub (the ARN of the caller's IAM role, not of its session), aud (a string for one
// audience, a list for several), iat, exp, jti, and under "https://sts.amazonaws.com/" the
// AWS claims aws_account, source_region and, with Tags, request_tags.
//
// The same server is the issuer: GET /.well-known/openid-configuration and
// /.well-known/jwks.json. The issuer URL is Options.Issuer, or else the URL the request reached
// the server at (an httptest server's URL), so relying-party emulators discover the keys over
// HTTP exactly as Entra ID or Chainguard fetch them from
// https://<id>.tokens.sts.global.api.aws.
package stsemu

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
)

// Namespace is the XML namespace of STS's 2011-06-15 API.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// ClaimsNamespace is the claim under which AWS puts its own claims.
const ClaimsNamespace = "https://sts.amazonaws.com/"

// Options configure a Server.
type Options struct {
	// Region is the Region the emulator answers for (the credential scope's Region).
	Region string
	// Credentials maps access key ids to secret keys that may call it.
	Credentials map[string]string
	// Roles maps access key ids to the ARN of the IAM role whose session they are
	// (arn:aws:iam::<account>:role/<name>): the token's sub.
	Roles map[string]string
	// Issuer is the issuer URL; empty means the URL the request reached the server at.
	Issuer string
	// Disabled starts the account with outbound federation off.
	Disabled bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issued is what the emulator recorded of a token it signed (never the token itself).
type Issued struct {
	Subject   string
	Audience  []string
	Algorithm string
	Duration  time.Duration
	ID        string
}

// Server is the emulator; it implements http.Handler.
type Server struct {
	emukit.Recorder
	opts Options
	rs   jwtkit.Key
	es   jwtkit.Key

	mu      sync.Mutex
	enabled bool
	issued  []Issued
	values  []string
}

// New returns an emulator with fresh signing keys.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:    opts,
		rs:      jwtkit.MustKey("RS256", "rs-"+emukit.RandHex(8)),
		es:      jwtkit.MustKey("ES384", "es-"+emukit.RandHex(8)),
		enabled: !opts.Disabled,
	}
}

// SetEnabled turns outbound identity federation on or off in the emulated account.
func (s *Server) SetEnabled(on bool) {
	s.mu.Lock()
	s.enabled = on
	s.mu.Unlock()
}

// Issued lists the tokens signed so far, oldest first.
func (s *Server) Issued() []Issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Issued(nil), s.issued...)
}

// Tokens returns every token value the emulator handed out, for leak scans of logs and errors.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.values...)
}

// KeySet is the issuer's JWKS (what /.well-known/jwks.json serves).
func (s *Server) KeySet() jwtkit.JWKS { return jwtkit.KeySet(s.rs, s.es) }

// SignAs signs claims with the issuer's key for alg (RS256 or ES384), for tests that need a
// token STS would never issue (expired, another audience) but signed by the real issuer.
func (s *Server) SignAs(alg string, claims map[string]any) (string, error) {
	k := s.rs
	if alg == "ES384" {
		k = s.es
	}
	return jwtkit.Sign(k, claims)
}

func (s *Server) issuer(r *http.Request) string {
	if s.opts.Issuer != "" {
		return s.opts.Issuer
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Record(w, r, emukit.AuthScheme(r), s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if st := s.TakeFault(r); st != 0 {
		s.fail(w, st, "InternalFailure", "injected fault")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/.well-known/openid-configuration":
		iss := s.issuer(r)
		emukit.WriteJSON(w, http.StatusOK, map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              iss + "/.well-known/jwks.json",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES384"},
		})
	case r.Method == http.MethodGet && r.URL.Path == "/.well-known/jwks.json":
		emukit.WriteJSON(w, http.StatusOK, s.KeySet())
	case r.Method == http.MethodPost && r.URL.Path == "/":
		s.query(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	body, err := emukit.ReadBody(r, 1<<20)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	keyID, err := emukit.VerifySigV4(r, body, s.opts.Credentials, "sts", s.opts.Region)
	if err != nil {
		se := err.(*emukit.SigV4Error)
		status := http.StatusForbidden
		if se.Code == "MissingAuthenticationToken" {
			status = http.StatusBadRequest
		}
		s.fail(w, status, se.Code, se.Message)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "ValidationError", "the body is not a form")
		return
	}
	if form.Get("Version") != "2011-06-15" {
		s.fail(w, http.StatusBadRequest, "InvalidAction", "Could not find operation "+form.Get("Action")+" for version "+form.Get("Version"))
		return
	}
	switch form.Get("Action") {
	case "GetWebIdentityToken":
		s.getWebIdentityToken(w, r, form, keyID)
	default:
		s.fail(w, http.StatusBadRequest, "InvalidAction", "Could not find operation "+form.Get("Action")+" for version 2011-06-15")
	}
}

func members(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.member.%d", name, i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (s *Server) getWebIdentityToken(w http.ResponseWriter, r *http.Request, form url.Values, keyID string) {
	aud := members(form, "Audience")
	alg := form.Get("SigningAlgorithm")
	dur := 300
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.fail(w, http.StatusBadRequest, "ValidationError", "DurationSeconds is not a number")
			return
		}
		dur = n
	}
	tags := map[string]string{}
	for i := 1; ; i++ {
		k, ok := form[fmt.Sprintf("Tags.member.%d.Key", i)]
		if !ok {
			break
		}
		tags[k[0]] = form.Get(fmt.Sprintf("Tags.member.%d.Value", i))
	}
	switch {
	case len(aud) == 0 || len(aud) > 10:
		s.fail(w, http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'audience' failed to satisfy constraint: Member must have length between 1 and 10")
		return
	case alg != "RS256" && alg != "ES384":
		s.fail(w, http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RS256, ES384]")
		return
	case dur < 60 || dur > 3600:
		s.fail(w, http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value between 60 and 3600")
		return
	}
	for _, a := range aud {
		if a == "" || len(a) > 1000 {
			s.fail(w, http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'audience' failed to satisfy constraint: Member must have length between 1 and 1000")
			return
		}
	}
	s.mu.Lock()
	enabled := s.enabled
	s.mu.Unlock()
	if !enabled {
		s.fail(w, http.StatusForbidden, "OutboundWebIdentityFederationDisabledException", "Outbound web identity federation is disabled for this account")
		return
	}
	role := s.opts.Roles[keyID]
	if role == "" {
		s.fail(w, http.StatusForbidden, "AccessDenied", "the caller is not an IAM role session")
		return
	}
	account := ""
	if p := strings.Split(role, ":"); len(p) >= 5 {
		account = p[4]
	}
	now := s.opts.Now().UTC().Truncate(time.Second)
	exp := now.Add(time.Duration(dur) * time.Second)
	jti := emukit.RandHex(16)
	var audClaim any = aud
	if len(aud) == 1 {
		audClaim = aud[0]
	}
	awsClaims := map[string]any{"aws_account": account, "source_region": s.opts.Region}
	if len(tags) > 0 {
		awsClaims["request_tags"] = tags
	}
	tok, err := s.SignAs(alg, map[string]any{
		"iss": s.issuer(r), "sub": role, "aud": audClaim, "iat": now.Unix(), "exp": exp.Unix(), "jti": jti,
		ClaimsNamespace: awsClaims,
	})
	if err != nil {
		s.fail(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	s.mu.Lock()
	s.issued = append(s.issued, Issued{Subject: role, Audience: aud, Algorithm: alg, Duration: time.Duration(dur) * time.Second, ID: jti})
	s.values = append(s.values, tok)
	s.mu.Unlock()
	type result struct {
		WebIdentityToken string `xml:"WebIdentityToken"`
		Expiration       string `xml:"Expiration"`
	}
	type response struct {
		XMLName   xml.Name `xml:"GetWebIdentityTokenResponse"`
		NS        string   `xml:"xmlns,attr"`
		Result    result   `xml:"GetWebIdentityTokenResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}
	writeXML(w, http.StatusOK, response{NS: Namespace, Result: result{WebIdentityToken: tok, Expiration: exp.Format(time.RFC3339)}, RequestID: emukit.RandHex(16)})
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	type errorResponse struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}
	writeXML(w, status, errorResponse{NS: Namespace, Type: typ, Code: code, Message: msg, RequestID: emukit.RandHex(16)})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}
