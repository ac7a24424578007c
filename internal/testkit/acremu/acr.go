// Package acr is a protocol-faithful emulator of the parts of Azure this project talks to when it
// manages an Azure Container Registry (ACR) token, written from the public references: the
// Microsoft Entra ID client-credentials token endpoint, the Azure Resource Manager (ARM)
// Registries_GenerateCredentials operation (api-version 2023-07-01, with its optional
// long-running 202 + Location / Azure-AsyncOperation form), and the registry's own token
// handshake (GET /v2/ challenge, GET /oauth2/token with Basic auth, as in
// https://azure.github.io/acr/Token-BasicAuth.html). One server plays
// login.microsoftonline.com, management.azure.com and <registry>.azurecr.io so a test needs one
// URL.
//
// Long-running answers follow ARM's rules for asynchronous POST actions: 202 with Location (and,
// with AsyncOperation, Azure-AsyncOperation) and Retry-After; the operation resource answers 200
// with status InProgress, then Succeeded, Failed or Canceled (with ARM's error detail); Location
// answers 202 while running, then the result, or the failure as an error response.
//
// Two behaviours of ACR matter to rotation and are modelled on the injectable clock: an ACR
// token has exactly two password slots and regenerating a slot invalidates its old password at
// once; and a new password is refused by the registry until it has replicated (about a minute
// on ACR; Options.ReplicationDelay here).
//
// It is used by the tests and by `make demo`, and is tested itself.
package acremu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
)

// Constants of the protocols the emulator speaks.
const (
	// APIVersion is the ARM api-version the emulator accepts for Microsoft.ContainerRegistry.
	APIVersion = "2023-07-01"
	// ManagementScope is the only scope the emulated Entra ID issues tokens for.
	ManagementScope = "https://management.azure.com/.default"
	// Password1 and Password2 are the two password slots of an ACR token.
	Password1 = "password1"
	Password2 = "password2"
	// Location is the Azure region the emulated registry lives in (it appears in LRO URLs).
	Location = "eastus"
)

// AsyncMode says how generateCredentials answers.
type AsyncMode int

// The answers generateCredentials can give.
const (
	// Sync answers 200 with the new credentials at once.
	Sync AsyncMode = iota
	// AsyncLocation answers 202 with a Location header; polling it answers 202 until the
	// operation is done, then 200 with the credentials.
	AsyncLocation
	// AsyncOperation answers 202 with Azure-AsyncOperation and Location headers: the first is
	// polled for {"status"}, the second gives the result once the status is Succeeded.
	AsyncOperation
)

// Options configure the emulator. The identity and registry fields are what a correct source
// secret must match.
type Options struct {
	// Now is the clock for token and password lifetimes and replication; nil means time.Now.
	Now func() time.Time
	// TenantID, ClientID and ClientSecret are the one service principal Entra ID knows.
	TenantID, ClientID, ClientSecret string
	// SubscriptionID, ResourceGroup and Registry name the one registry ARM knows.
	SubscriptionID, ResourceGroup, Registry string
	// LoginServer is the service name the registry announces; empty means
	// <registry in lower case>.azurecr.io.
	LoginServer string
	// ReplicationDelay is how long after its creation a password is refused by the registry.
	ReplicationDelay time.Duration
	// Async selects the long-running form of generateCredentials.
	Async AsyncMode
	// AsyncPolls is how many polls see the operation still running; zero means 1.
	AsyncPolls int
	// RetryAfter is the Retry-After (seconds) sent with 202 answers; zero means 1.
	RetryAfter int
	// AsyncOutcome is how a long-running generateCredentials ends: "" (or "Succeeded"),
	// "Failed" or "Canceled". A failed or canceled operation changes no password; its
	// Azure-AsyncOperation document carries status and ARM's {"error":{"code","message"}}, and its
	// Location answers that error as an error response (400 Failed, 409 Canceled), as ARM's
	// "202 Accepted and Location Headers" rules say a failed operation's Location answers.
	AsyncOutcome string
	// RegistryLocation puts the Location under the registry, as the REST spec's example does
	// (…/registries/{reg}/operationStatuses/registries-<guid>), instead of the subscription's
	// locations/{region}/operationResults/{id}. It behaves the same: 202 while running, then the
	// result.
	RegistryLocation bool
	// AADTokenLifetime is the lifetime of Entra ID access tokens; zero means 3599 s, as Entra ID.
	AADTokenLifetime time.Duration
	// Forbidden makes ARM refuse generateCredentials with 403 AuthorizationFailed, as when the
	// service principal has no role on the registry.
	Forbidden bool
	// FederatedCredentials are the federated identity credentials on the app registration
	// ClientID: a client_assertion is accepted only if it matches one of them (see entraAssertion).
	FederatedCredentials []FederatedCredential
	// DiscoveryClient fetches an issuer's openid-configuration and JWKS; nil means
	// http.DefaultClient (the issuers of tests live on loopback).
	DiscoveryClient *http.Client
}

// FederatedCredential is one federated identity credential of an app registration, as
// `az ad app federated-credential create` registers it: tokens of Issuer about Subject for
// Audience stand in for a client secret.
type FederatedCredential struct {
	Issuer, Subject, Audience string
}

// Password is one slot of a token as the emulator stores it.
type Password struct {
	Name         string
	Value        string
	CreationTime time.Time
	Expiry       time.Time // zero: never
}

// Generation is one recorded generateCredentials request.
type Generation struct {
	Token string
	// Slot is password1 or password2 ("" regenerated both, as ARM does without a name).
	Slot   string
	Expiry time.Time
	At     time.Time
}

type token struct {
	name      string
	disabled  bool
	passwords map[string]Password
}

type operation struct {
	token     string
	result    map[string]any
	pollsLeft int
	outcome   string // Succeeded, Failed or Canceled
}

// Call is one request the emulator answered.
type Call = emukit.Call

// Server is the emulator. Create it with New.
type Server struct {
	emukit.Recorder
	opts Options

	mu          sync.Mutex
	tokens      map[string]*token // by lower-case name
	aadTokens   map[string]time.Time
	regTokens   map[string]time.Time
	ops         map[string]*operation
	generations []Generation
	issued      []string // every secret value handed out, for leak scans
}

// New returns an emulator whose registry has the named tokens (without passwords yet).
func New(opts Options, tokens ...string) *Server {
	if opts.LoginServer == "" {
		opts.LoginServer = strings.ToLower(opts.Registry) + ".azurecr.io"
	}
	if opts.AsyncPolls <= 0 {
		opts.AsyncPolls = 1
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 1
	}
	if opts.AADTokenLifetime <= 0 {
		opts.AADTokenLifetime = 3599 * time.Second
	}
	s := &Server{opts: opts, tokens: map[string]*token{}, aadTokens: map[string]time.Time{}, regTokens: map[string]time.Time{}, ops: map[string]*operation{}}
	for _, t := range tokens {
		s.AddToken(t)
	}
	return s
}

// LoginServer is the service name the registry announces.
func (s *Server) LoginServer() string { return s.opts.LoginServer }

// TokenID returns the ARM resource id of a token of the emulated registry.
func (s *Server) TokenID(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerRegistry/registries/%s/tokens/%s",
		s.opts.SubscriptionID, s.opts.ResourceGroup, s.opts.Registry, name)
}

// AddToken adds a token without passwords.
func (s *Server) AddToken(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[strings.ToLower(name)] = &token{name: name, passwords: map[string]Password{}}
}

// SetEnabled enables or disables a token; a disabled token logs in with no password.
func (s *Server) SetEnabled(name string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[strings.ToLower(name)]; ok {
		t.disabled = !enabled
	}
}

// SetReplicationDelay changes how long new passwords are refused (existing ones included:
// replication is measured from each password's creation time).
func (s *Server) SetReplicationDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ReplicationDelay = d
}

// Passwords returns a copy of a token's password slots (values included, for assertions).
func (s *Server) Passwords(name string) map[string]Password {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Password{}
	if t, ok := s.tokens[strings.ToLower(name)]; ok {
		for k, v := range t.passwords {
			out[k] = v
		}
	}
	return out
}

// Generations returns the recorded generateCredentials requests, oldest first.
func (s *Server) Generations() []Generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.generations)
}

// Issued returns every secret the emulator handed out: passwords, Entra ID access tokens and
// registry tokens. Leak tests scan logs and errors for them.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Record(w, r, emukit.AuthScheme(r), s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if st := s.TakeFault(r); st != 0 {
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		armError(w, st, "InjectedFailure", "injected failure")
		return
	}
	switch {
	case p == "/v2/" || p == "/v2":
		s.registryPing(w, r)
	case p == "/oauth2/token":
		s.registryToken(w, r)
	case strings.HasSuffix(p, "/oauth2/v2.0/token") && strings.Count(p, "/") == 4:
		s.entraToken(w, r, strings.Split(p, "/")[1])
	case strings.HasPrefix(strings.ToLower(p), "/subscriptions/"):
		s.arm(w, r)
	default:
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "NotFound", "message": "no such endpoint"}})
	}
}

// entraToken is POST /{tenant}/oauth2/v2.0/token with the client-credentials grant. Error
// answers carry the AADSTS codes Entra ID uses for each mistake.
func (s *Server) entraToken(w http.ResponseWriter, r *http.Request, tenant string) {
	aad := func(status int, code, desc string) {
		emukit.WriteJSON(w, status, map[string]any{"error": code, "error_description": desc, "error_codes": []int{}, "timestamp": s.now().UTC().Format("2006-01-02 15:04:05Z")})
	}
	if r.Method != http.MethodPost {
		aad(http.StatusMethodNotAllowed, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/x-www-form-urlencoded" {
		aad(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if err := r.ParseForm(); err != nil {
		aad(http.StatusBadRequest, "invalid_request", "AADSTS90014: The request body is not a valid form.")
		return
	}
	f := r.PostForm
	switch {
	case !strings.EqualFold(tenant, s.opts.TenantID):
		aad(http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant '"+url.PathEscape(tenant)+"' not found. Check to make sure you have the correct tenant ID.")
	case f.Get("grant_type") != "client_credentials":
		aad(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
	case !strings.EqualFold(f.Get("client_id"), s.opts.ClientID):
		aad(http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier was not found in the directory.")
	case f.Get("client_assertion") != "" || f.Get("client_assertion_type") != "":
		if f.Get("client_secret") != "" {
			aad(http.StatusBadRequest, "invalid_request", "AADSTS90014: Only one of client_secret and client_assertion may be presented.")
			return
		}
		if status, code, desc := s.entraAssertion(r, f); status != 0 {
			aad(status, code, desc)
			return
		}
		if f.Get("scope") != ManagementScope {
			aad(http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid.")
			return
		}
		s.issueAAD(w)
	case s.opts.ClientSecret == "" || f.Get("client_secret") != s.opts.ClientSecret:
		aad(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	case f.Get("scope") != ManagementScope:
		aad(http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid.")
	default:
		s.issueAAD(w)
	}
}

// issueAAD answers a new Entra ID access token for ARM.
func (s *Server) issueAAD(w http.ResponseWriter) {
	s.mu.Lock()
	tok := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.aad-" + emukit.RandHex(24)
	s.aadTokens[tok] = s.now().Add(s.opts.AADTokenLifetime)
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	secs := int(s.opts.AADTokenLifetime / time.Second)
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
}

// entraAssertion checks a client_assertion as Entra ID checks a federated credential's token:
// the type is jwt-bearer; the token is a JWT; a federated credential of the app has its issuer
// (AADSTS700211); the issuer's keys, found through its /.well-known/openid-configuration, verify
// its signature (AADSTS50013 otherwise — a token re-signed with another key, or altered); the
// credential with that issuer also has its subject (AADSTS700213) and audience (AADSTS700212);
// and it has not expired (AADSTS700024). It returns status 0 for an accepted assertion.
// The AADSTS codes are Entra ID's for these refusals; its descriptions are abridged.
func (s *Server) entraAssertion(r *http.Request, f url.Values) (status int, code, desc string) {
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return http.StatusBadRequest, "invalid_request", "AADSTS700023: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer."
	}
	_, _, claims, err := jwtkit.Parse(f.Get("client_assertion"))
	if err != nil {
		return http.StatusBadRequest, "invalid_client", "AADSTS50027: JWT token is invalid or malformed."
	}
	var withIssuer []FederatedCredential
	for _, fc := range s.opts.FederatedCredentials {
		if fc.Issuer == claims.Issuer {
			withIssuer = append(withIssuer, fc)
		}
	}
	if len(withIssuer) == 0 {
		return http.StatusBadRequest, "invalid_client", "AADSTS700211: No matching federated identity record found for presented assertion issuer '" + claims.Issuer + "'."
	}
	client := s.opts.DiscoveryClient
	if client == nil {
		client = http.DefaultClient
	}
	keys, err := jwtkit.Discover(r.Context(), client, claims.Issuer)
	if err != nil {
		return http.StatusBadRequest, "invalid_client", "AADSTS50013: Assertion failed signature validation: the issuer's keys could not be retrieved."
	}
	subjectSeen := false
	for _, fc := range withIssuer {
		_, err := jwtkit.Verify(f.Get("client_assertion"), keys, jwtkit.Expect{Issuer: fc.Issuer, Subject: fc.Subject, Audience: fc.Audience, Now: s.now(), Algorithms: []string{"RS256", "ES256", "ES384"}})
		switch {
		case err == nil:
			return 0, "", ""
		case errors.Is(err, jwtkit.ErrAlgorithm), errors.Is(err, jwtkit.ErrUnknownKey), errors.Is(err, jwtkit.ErrSignature), errors.Is(err, jwtkit.ErrMalformed):
			return http.StatusBadRequest, "invalid_client", "AADSTS50013: Assertion failed signature validation."
		case errors.Is(err, jwtkit.ErrSubject):
			continue
		case errors.Is(err, jwtkit.ErrAudience):
			subjectSeen = true
			continue
		case errors.Is(err, jwtkit.ErrExpired), errors.Is(err, jwtkit.ErrNotYet):
			return http.StatusBadRequest, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range."
		default:
			return http.StatusBadRequest, "invalid_client", "AADSTS50013: " + err.Error()
		}
	}
	if subjectSeen {
		return http.StatusBadRequest, "invalid_client", "AADSTS700212: No matching federated identity record found for presented assertion audience."
	}
	return http.StatusBadRequest, "invalid_client", "AADSTS700213: No matching federated identity record found for presented assertion subject '" + claims.Subject + "'."
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	emukit.WriteJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// checkBearer answers 401 and returns false unless r carries a live Entra ID token.
func (s *Server) checkBearer(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") {
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return false
	}
	s.mu.Lock()
	exp, ok := s.aadTokens[strings.TrimPrefix(auth, "Bearer ")]
	s.mu.Unlock()
	switch {
	case !ok:
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return false
	case !s.now().Before(exp):
		armError(w, http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
		return false
	}
	return true
}

// arm routes the Azure Resource Manager paths. ARM matches resource names and keywords without
// regard to case.
func (s *Server) arm(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	eq := strings.EqualFold
	if len(seg) < 2 || !eq(seg[1], s.opts.SubscriptionID) {
		armError(w, http.StatusNotFound, "SubscriptionNotFound", "The subscription could not be found.")
		return
	}
	if !s.checkBearer(w, r) {
		return
	}
	if v := r.URL.Query().Get("api-version"); v == "" {
		armError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	} else if v != APIVersion {
		armError(w, http.StatusBadRequest, "NoRegisteredProviderFound", "No registered resource provider found for the api-version '"+url.QueryEscape(v)+"'. The supported api-versions include '"+APIVersion+"'.")
		return
	}
	switch {
	// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{reg}/generateCredentials
	case len(seg) == 9 && eq(seg[2], "resourceGroups") && eq(seg[4], "providers") && eq(seg[5], "Microsoft.ContainerRegistry") && eq(seg[6], "registries") && eq(seg[8], "generateCredentials"):
		if r.Method != http.MethodPost {
			armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "generateCredentials accepts POST only.")
			return
		}
		if s.opts.Forbidden {
			armError(w, http.StatusForbidden, "AuthorizationFailed", "The client '"+s.opts.ClientID+"' does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/generateCredentials/action' over scope '/subscriptions/"+s.opts.SubscriptionID+"/resourceGroups/"+seg[3]+"/providers/Microsoft.ContainerRegistry/registries/"+seg[7]+"' or the scope is invalid.")
			return
		}
		if !eq(seg[3], s.opts.ResourceGroup) || !eq(seg[7], s.opts.Registry) {
			armError(w, http.StatusNotFound, "ResourceNotFound", "The Resource 'Microsoft.ContainerRegistry/registries/"+seg[7]+"' under resource group '"+seg[3]+"' was not found.")
			return
		}
		s.generate(w, r)
	// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{reg}/operationStatuses/{id} (RegistryLocation)
	case len(seg) == 10 && eq(seg[2], "resourceGroups") && eq(seg[4], "providers") && eq(seg[5], "Microsoft.ContainerRegistry") && eq(seg[6], "registries") && eq(seg[8], "operationStatuses") && r.Method == http.MethodGet:
		s.operationResult(w, r, seg[9])
	// /subscriptions/{sub}/providers/Microsoft.ContainerRegistry/locations/{loc}/operationResults|operationStatuses/{id}
	case len(seg) == 8 && eq(seg[2], "providers") && eq(seg[3], "Microsoft.ContainerRegistry") && eq(seg[4], "locations") && r.Method == http.MethodGet:
		switch {
		case eq(seg[6], "operationResults"):
			s.operationResult(w, r, seg[7])
		case eq(seg[6], "operationStatuses"):
			s.operationStatus(w, r, seg[7])
		default:
			armError(w, http.StatusNotFound, "NotFound", "no such operation endpoint")
		}
	default:
		armError(w, http.StatusNotFound, "InvalidResourceType", "The resource type could not be found.")
	}
}

// generate is Registries_GenerateCredentials: regenerate one slot (or both) of a token.
func (s *Server) generate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TokenID *string `json:"tokenId"`
		Name    *string `json:"name"`
		Expiry  *string `json:"expiry"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		armError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
		return
	}
	if in.TokenID == nil || *in.TokenID == "" {
		armError(w, http.StatusBadRequest, "InvalidParameter", "The tokenId is required.")
		return
	}
	var slots []string
	switch {
	case in.Name == nil:
		slots = []string{Password1, Password2}
	case *in.Name == Password1 || *in.Name == Password2:
		slots = []string{*in.Name}
	default:
		armError(w, http.StatusBadRequest, "InvalidParameter", "The name must be password1 or password2.")
		return
	}
	now := s.now().UTC()
	var expiry time.Time
	if in.Expiry != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.Expiry)
		if err != nil || !t.After(now) {
			armError(w, http.StatusBadRequest, "InvalidParameter", "The expiry must be an ISO 8601 date-time in the future.")
			return
		}
		expiry = t.UTC()
	}
	prefix := strings.ToLower(strings.TrimSuffix(s.TokenID(""), "/"))
	id := strings.ToLower(strings.TrimRight(*in.TokenID, "/"))
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.tokens[strings.TrimPrefix(id, prefix+"/")]
	if !strings.HasPrefix(id, prefix+"/") || !ok {
		armError(w, http.StatusNotFound, "ResourceNotFound", "The token given by tokenId was not found in registry '"+s.opts.Registry+"'.")
		return
	}
	outcome := "Succeeded"
	if s.opts.Async != Sync && s.opts.AsyncOutcome != "" {
		outcome = s.opts.AsyncOutcome
	}
	var passwords []map[string]any
	var fresh []Password
	for _, slot := range slots {
		p := Password{Name: slot, Value: newPassword(), CreationTime: now, Expiry: expiry}
		fresh = append(fresh, p)
		m := map[string]any{"name": slot, "value": p.Value, "creationTime": now.Format(time.RFC3339Nano)}
		if !expiry.IsZero() {
			m["expiry"] = expiry.Format(time.RFC3339Nano)
		}
		passwords = append(passwords, m)
	}
	apply := func() {
		for _, p := range fresh {
			tok.passwords[p.Name] = p // the old value of this slot stops working now
			s.issued = append(s.issued, p.Value)
		}
		g := Generation{Token: tok.name, Expiry: expiry, At: now}
		if len(slots) == 1 {
			g.Slot = slots[0]
		}
		s.generations = append(s.generations, g)
	}
	result := map[string]any{"username": tok.name, "passwords": passwords}
	if s.opts.Async == Sync {
		apply()
		emukit.WriteJSON(w, http.StatusOK, result)
		return
	}
	if outcome == "Succeeded" {
		// ARM regenerates at once and reports later; the emulator does the same, so the old
		// value of the slot stops working when the 202 is sent.
		apply()
	}
	opID := emukit.RandHex(16)
	if s.opts.RegistryLocation {
		opID = "registries-" + opID
	}
	s.ops[opID] = &operation{token: tok.name, result: result, pollsLeft: s.opts.AsyncPolls, outcome: outcome}
	s.setLROHeaders(w, r, opID)
	w.WriteHeader(http.StatusAccepted)
}

// setLROHeaders needs s.mu held.
func (s *Server) setLROHeaders(w http.ResponseWriter, r *http.Request, opID string) {
	base := fmt.Sprintf("%s://%s/subscriptions/%s/providers/Microsoft.ContainerRegistry/locations/%s/", scheme(r), r.Host, s.opts.SubscriptionID, Location)
	if s.opts.RegistryLocation {
		w.Header().Set("Location", fmt.Sprintf("%s://%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerRegistry/registries/%s/operationStatuses/%s?api-version=%s",
			scheme(r), r.Host, s.opts.SubscriptionID, s.opts.ResourceGroup, s.opts.Registry, opID, APIVersion))
	} else {
		w.Header().Set("Location", base+"operationResults/"+opID+"?api-version="+APIVersion)
	}
	if s.opts.Async == AsyncOperation {
		w.Header().Set("Azure-AsyncOperation", base+"operationStatuses/"+opID+"?api-version="+APIVersion)
	}
	w.Header().Set("Retry-After", strconv.Itoa(s.opts.RetryAfter))
}

// operationStatus is the Azure-AsyncOperation URL: {"status"} until the operation is done.
func (s *Server) operationStatus(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		armError(w, http.StatusNotFound, "OperationNotFound", "The operation was not found.")
		return
	}
	if op.pollsLeft > 0 {
		op.pollsLeft--
		w.Header().Set("Retry-After", strconv.Itoa(s.opts.RetryAfter))
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"id": r.URL.Path, "status": "InProgress"})
		return
	}
	doc := map[string]any{"id": r.URL.Path, "name": id, "status": op.outcome}
	if e := op.failure(); e != nil {
		doc["error"] = e
	}
	emukit.WriteJSON(w, http.StatusOK, doc)
}

// failure is ARM's error detail for an operation that did not succeed, nil for one that did.
func (op *operation) failure() map[string]any {
	switch op.outcome {
	case "Failed":
		return map[string]any{"code": "TokenCredentialGenerationFailed", "message": "Generating credentials for token '" + op.token + "' failed. Please retry the operation.",
			"details": []map[string]any{{"code": "InternalServerError", "message": "An internal error occurred while regenerating the password."}}}
	case "Canceled":
		return map[string]any{"code": "OperationCanceled", "message": "The operation generating credentials for token '" + op.token + "' was canceled."}
	}
	return nil
}

// operationResult is the Location URL: 202 while running, then 200 with the credentials.
func (s *Server) operationResult(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		armError(w, http.StatusNotFound, "OperationNotFound", "The operation was not found.")
		return
	}
	if op.pollsLeft > 0 {
		if s.opts.Async == AsyncLocation {
			op.pollsLeft--
		}
		s.setLROHeaders(w, r, id)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if e := op.failure(); e != nil {
		status := http.StatusBadRequest
		if op.outcome == "Canceled" {
			status = http.StatusConflict
		}
		emukit.WriteJSON(w, status, map[string]any{"error": e})
		return
	}
	emukit.WriteJSON(w, http.StatusOK, op.result)
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// registryPing is GET /v2/: 200 with a live registry token, else the Bearer challenge. The
// realm is on the host the client reached, as ACR's is (https://<registry>.azurecr.io/oauth2/token).
func (s *Server) registryPing(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	exp, ok := s.regTokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	valid := ok && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && s.now().Before(exp)
	s.mu.Unlock()
	if valid {
		emukit.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s://%s/oauth2/token",service="%s"`, scheme(r), r.Host, s.opts.LoginServer))
	registryError(w, http.StatusUnauthorized, "authentication required, visit https://aka.ms/acr/authorization for more information.")
}

func registryError(w http.ResponseWriter, status int, msg string) {
	emukit.WriteJSON(w, status, map[string]any{"errors": []map[string]any{{"code": "UNAUTHORIZED", "message": msg}}})
}

// registryToken is GET /oauth2/token with Basic tokenName:password: a registry access token for
// a password that has replicated and has not expired.
func (s *Server) registryToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		registryError(w, http.StatusMethodNotAllowed, "the emulator implements GET /oauth2/token only")
		return
	}
	q := r.URL.Query()
	if !strings.EqualFold(q.Get("service"), s.opts.LoginServer) {
		emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"code": "UNSUPPORTED", "message": "unknown service"}}})
		return
	}
	for _, sc := range q["scope"] {
		if !strings.HasPrefix(sc, "repository:") || !strings.Contains(sc, ":pull") {
			emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"code": "UNSUPPORTED", "message": "invalid scope"}}})
			return
		}
	}
	user, pass, hasAuth := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !hasAuth || !s.validPassword(user, pass) {
		registryError(w, http.StatusUnauthorized, "authentication required, visit https://aka.ms/acr/authorization for more information.")
		return
	}
	tok := "acr-access-" + emukit.RandHex(20)
	s.regTokens[tok] = s.now().Add(75 * time.Minute)
	s.issued = append(s.issued, tok)
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"access_token": tok})
}

// validPassword needs s.mu held.
func (s *Server) validPassword(user, pass string) bool {
	t, ok := s.tokens[strings.ToLower(user)]
	if !ok || t.disabled || pass == "" {
		return false
	}
	now := s.now()
	for _, p := range t.passwords {
		if p.Value == pass && !now.Before(p.CreationTime.Add(s.opts.ReplicationDelay)) && (p.Expiry.IsZero() || now.Before(p.Expiry)) {
			return true
		}
	}
	return false
}

// newPassword looks like an ACR token password: 32 random bytes, base64 (44 characters).
func newPassword() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
