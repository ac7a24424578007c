// Package acr mints Azure Container Registry (ACR) token passwords for the
// azure-container-registry pull-through cache rule.
//
// An ACR token (a repository-scoped username, created once by a person with a scope map) has
// exactly two password slots, password1 and password2. Minting regenerates one slot through the
// Azure Resource Manager (ARM) action Registries_GenerateCredentials, authenticated as a service
// principal with the Microsoft Entra ID client-credentials grant. Two plain HTTPS calls; the
// official Azure SDK would add over 1 MiB to a Lambda binary that has no room for it
// (docs/dependencies-acr.md).
//
// # Source secret
//
//	{
//	  "tenantId": "<directory (tenant) id>",
//	  "clientId": "<application (client) id of the service principal>",
//	  "clientSecret": "<client secret value>",      // or, with no secret at all:
//	  "federated": true,                           // see "Federated mode" below
//	  "assertionAudience": "api://AzureADTokenExchange", // optional, federated mode only
//	  "tokenId": "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<reg>/tokens/<name>",
//	  "loginServer": "<reg>.azurecr.io",          // optional, default from tokenId
//	  "passwordLifetimeDays": 90,                  // optional; -1: passwords never expire
//	  "checkRepository": "hello-world",            // optional, see below
//	  "authorityUrl": "https://login.microsoftonline.com",          // optional
//	  "managementUrl": "https://management.azure.com",              // optional
//	  "managementScope": "https://management.azure.com/.default"    // optional
//	}
//
// The service principal needs Microsoft.ContainerRegistry/registries/generateCredentials/action
// on the registry. The registry username is the token name. The login check asks ACR's token
// endpoint for a pull scope on checkRepository (default "hello-world", the repository ACR's own
// token-auth example uses); a valid password gets a token whether or not that repository exists,
// so set it to a repository the token's scope map covers only if you want the check to name one.
// # Pinned hosts
//
// loginServer must end in .azurecr.io (Azure), .azurecr.cn (Azure operated by 21Vianet) or
// .azurecr.us (Azure Government); its suffix picks the cloud (Cloud), and the Entra ID
// authority and ARM host must be that cloud's (authorityUrl, managementUrl and
// managementScope default to them; any other host is refused). The registry's token realm is
// the login server itself, so the login check sends the password nowhere else, and the
// ptc:registry-url tag (UpstreamRegistryUrl) must name the login server.
//
// # Federated mode
//
// With "federated": true and no "clientSecret", nothing secret is stored: the function's IAM
// role asks AWS STS for a web identity token (sts:GetWebIdentityToken, RS256, five minutes,
// audience "assertionAudience", default api://AzureADTokenExchange) and Entra ID takes it as the
// client_assertion of the client-credentials grant
// (client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer). The app
// registration "clientId" needs a federated identity credential with issuer = the AWS account's
// outbound federation issuer URL, subject = the function role's ARN and that audience
// (docs/deploy.md). Entra ID verifies the token's signature against the issuer's JWKS and its
// iss, sub, aud and exp. The token is reused for the upstream's life (one invocation) until a
// minute before it expires, and is never logged.
//
// # Which slot, and what that means for overlap
//
// ACR passwords carry no labels, so the slot a secret version uses is recorded as a custom
// staging label on that version: StagePassword1 or StagePassword2 (Minted.Stages, put with
// AWSPENDING; Secrets Manager moves a label when it is put on another version). Mint regenerates
// the slot the AWSCURRENT version does not carry, so the password ECR uses now keeps working
// throughout the rotation. The choice, from MintRequest.CurrentStages:
//
//   - no stages at all (the secret does not exist yet: the provisioner's first password):
//     password1;
//   - AWSCURRENT carries StagePassword1: password2; carries StagePassword2: password1;
//   - AWSCURRENT carries neither (a secret made by hand or adopted): password2, with a warning.
//     People and `az acr token create` fill password1 first, so a hand-made secret most likely
//     uses it, and regenerating password2 then breaks nothing; if it did use password2, the
//     current password stops working until this rotation finishes;
//   - AWSCURRENT carries both (edited by hand): an error, since either choice may break it.
//
// Tokens returns nil and Revoke does nothing: regenerating a slot is what invalidates its old
// password, and there is no token to delete. The consequence, with only two slots: a rotation
// overwrites the slot AWSPREVIOUS uses, so the previous password keeps working between
// rotations but stops the moment the next rotation mints (at createSecret), not at
// finishSecret. AWSCURRENT keeps working at every point, including a crash between
// regenerating a slot and PutSecretValue: the retry regenerates the same, unused, slot again.
//
// New passwords take up to about a minute to replicate inside ACR, so Verify retries a refused
// login with backoff until shortly before the Lambda deadline.
//
// An ACR token must belong to one managed secret only: two secrets rotating the same token
// would regenerate each other's slots.
package acr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// The two password slots of an ACR token, and the custom staging labels that record which one a
// secret version uses.
const (
	Password1      = "password1"
	Password2      = "password2"
	StagePassword1 = "ptc-acr-password1"
	StagePassword2 = "ptc-acr-password2"
)

// Defaults for the source secret's optional fields. The Entra ID, ARM and scope defaults are
// those of Azure's public cloud; a login server of another cloud defaults to that cloud's
// (Clouds).
const (
	DefaultAuthorityURL    = "https://login.microsoftonline.com"
	DefaultManagementURL   = "https://management.azure.com"
	DefaultManagementScope = "https://management.azure.com/.default"
	DefaultLifetimeDays    = 90
	DefaultCheckRepository = "hello-world"
	// DefaultAssertionAudience is the audience Entra ID expects of a federated credential's
	// token in the public cloud.
	DefaultAssertionAudience = "api://AzureADTokenExchange"
	// LoginServerSuffix follows the registry name in the default login server.
	LoginServerSuffix = ".azurecr.io"
)

// Cloud is one Azure cloud instance: its ACR login server suffix and the Entra ID and Azure
// Resource Manager hosts that go with it.
type Cloud struct {
	// Name is how errors call it.
	Name string
	// RegistrySuffix ends every login server of the cloud, e.g. ".azurecr.io".
	RegistrySuffix string
	// Authorities are the Entra ID hosts; the first is the default.
	Authorities []string
	// Management is the ARM host; the ARM scope is "https://<Management>/.default".
	Management string
}

// Clouds are the Azure clouds ACR is an upstream in, with their hosts (Microsoft's "national
// clouds" page and the Azure SDKs' cloud tables: China's Entra ID answers at both
// login.chinacloudapi.cn and login.partner.microsoftonline.cn).
var Clouds = []Cloud{
	{Name: "Azure", RegistrySuffix: ".azurecr.io", Authorities: []string{"login.microsoftonline.com"}, Management: "management.azure.com"},
	{Name: "Azure operated by 21Vianet (China)", RegistrySuffix: ".azurecr.cn", Authorities: []string{"login.chinacloudapi.cn", "login.partner.microsoftonline.cn"}, Management: "management.chinacloudapi.cn"},
	{Name: "Azure Government", RegistrySuffix: ".azurecr.us", Authorities: []string{"login.microsoftonline.us"}, Management: "management.usgovcloudapi.net"},
}

// RegistryHosts is every ACR login server of every cloud: what UpstreamRegistryUrl may name
// before the source secret is read. Once it is, the login server alone (LoginHosts).
var RegistryHosts = func() pinned.Hosts {
	h := pinned.Hosts{Upstream: ptcsecret.UpstreamACR}
	for _, c := range Clouds {
		h.Suffixes = append(h.Suffixes, c.RegistrySuffix)
	}
	return h
}()

// CloudOf returns the cloud whose suffix ends loginServer (a host), and false for none.
func CloudOf(loginServer string) (Cloud, bool) {
	for _, c := range Clouds {
		if (pinned.Hosts{Suffixes: []string{c.RegistrySuffix}}).Allows(loginServer) {
			return c, true
		}
	}
	return Cloud{}, false
}

// AuthorityHosts are the cloud's Entra ID hosts.
func (c Cloud) AuthorityHosts() pinned.Hosts {
	return pinned.Hosts{Upstream: ptcsecret.UpstreamACR + " (" + c.Name + ")", Exact: c.Authorities}
}

// ManagementHosts is the cloud's ARM host.
func (c Cloud) ManagementHosts() pinned.Hosts {
	return pinned.Hosts{Upstream: ptcsecret.UpstreamACR + " (" + c.Name + ")", Exact: []string{c.Management}}
}

// Scope is the client-credentials scope for the cloud's ARM.
func (c Cloud) Scope() string { return "https://" + c.Management + "/.default" }

// LoginHosts is the one login server a source names: registry and token realm.
func LoginHosts(loginServer string) pinned.Hosts {
	return pinned.Hosts{Upstream: ptcsecret.UpstreamACR, Exact: []string{loginServer}}
}

// Verify's retry schedule while a new password replicates.
const (
	// VerifyFirstWait is the first pause after a refused login; it doubles up to VerifyMaxWait.
	VerifyFirstWait = 2 * time.Second
	VerifyMaxWait   = 10 * time.Second
	// VerifyMargin is left before ctx's deadline so the step can still report its error.
	VerifyMargin = 10 * time.Second
	// VerifyBudget caps the total wait (ACR documents about a minute; a credential that is
	// simply wrong should not hold a Lambda for its whole timeout).
	VerifyBudget = 3 * time.Minute
)

// Source is the source secret's JSON for azure-container-registry.
type Source struct {
	// TenantID is the Microsoft Entra directory (tenant) id, or its domain name.
	TenantID string `json:"tenantId"`
	// ClientID is the application (client) id of the service principal.
	ClientID string `json:"clientId"`
	// ClientSecret is the service principal's client secret value; empty in federated mode.
	ClientSecret string `json:"clientSecret,omitempty"`
	// Federated selects federated mode: the function role's web identity token replaces the
	// client secret.
	Federated bool `json:"federated,omitempty"`
	// AssertionAudience is the audience of the web identity token in federated mode; empty
	// means DefaultAssertionAudience.
	AssertionAudience string `json:"assertionAudience,omitempty"`
	// TokenID is the ARM resource id of the ACR token whose passwords are rotated.
	TokenID string `json:"tokenId"`
	// LoginServer is the registry host, ending in .azurecr.io, .azurecr.cn or .azurecr.us;
	// default <registry>.azurecr.io from TokenID.
	LoginServer string `json:"loginServer,omitempty"`
	// PasswordLifetimeDays sets each password's expiry; 0 means 90, -1 means never.
	PasswordLifetimeDays int `json:"passwordLifetimeDays,omitempty"`
	// CheckRepository is the repository the login check asks a pull scope for.
	CheckRepository string `json:"checkRepository,omitempty"`
	// AuthorityURL is the Entra ID host of LoginServer's cloud (default its first authority).
	AuthorityURL string `json:"authorityUrl,omitempty"`
	// ManagementURL is the ARM host of LoginServer's cloud (the default, and the only one).
	ManagementURL string `json:"managementUrl,omitempty"`
	// ManagementScope is the ARM scope of that cloud: https://<management host>/.default.
	ManagementScope string `json:"managementScope,omitempty"`
}

var (
	tenantRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252}[a-zA-Z0-9])?$`)
	repoRE   = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
)

const errPrefix = "azure-container-registry source secret: "

// ParseSource reads and checks the source secret. Errors name the field, never its value.
func ParseSource(raw []byte) (Source, error) {
	var s Source
	if err := upstream.DecodeSource(raw, ptcsecret.UpstreamACR, &s); err != nil {
		return Source{}, err
	}
	switch {
	case strings.TrimSpace(s.TenantID) == "":
		return Source{}, errors.New(errPrefix + `field "tenantId" is required (the Microsoft Entra directory (tenant) id)`)
	case !tenantRE.MatchString(s.TenantID):
		return Source{}, errors.New(errPrefix + `field "tenantId" must be a directory (tenant) id (a GUID) or the tenant's domain name`)
	case strings.TrimSpace(s.ClientID) == "":
		return Source{}, errors.New(errPrefix + `field "clientId" is required (the application (client) id of the service principal)`)
	case !guidRE.MatchString(s.ClientID):
		return Source{}, errors.New(errPrefix + `field "clientId" must be the application (client) id, a GUID`)
	case s.Federated && s.ClientSecret != "":
		return Source{}, errors.New(errPrefix + `fields "clientSecret" and "federated" exclude each other: remove "clientSecret" to use the function role's web identity token, or "federated" to use the secret`)
	case !s.Federated && s.ClientSecret == "":
		return Source{}, errors.New(errPrefix + `field "clientSecret" is required (the service principal's client secret value), unless "federated": true lets the function's IAM role stand in for it (README, "ACR federated mode")`)
	case !s.Federated && s.AssertionAudience != "":
		return Source{}, errors.New(errPrefix + `field "assertionAudience" applies to federated mode only; add "federated": true or remove it`)
	case strings.TrimSpace(s.TokenID) == "":
		return Source{}, errors.New(errPrefix + `field "tokenId" is required (the ACR token's resource id: az acr token show --query id)`)
	}
	tid, err := ParseTokenID(s.TokenID)
	if err != nil {
		return Source{}, fmt.Errorf(errPrefix+`field "tokenId" %v`, err)
	}
	s.TokenID = tid.String()
	if s.LoginServer == "" {
		s.LoginServer = strings.ToLower(tid.Registry) + LoginServerSuffix
	}
	if _, err := registryauth.ParseRegistry(s.LoginServer); err != nil {
		return Source{}, errors.New(errPrefix + `field "loginServer" is not a registry host (use e.g. myregistry.azurecr.io)`)
	}
	switch {
	case s.PasswordLifetimeDays == 0:
		s.PasswordLifetimeDays = DefaultLifetimeDays
	case s.PasswordLifetimeDays < -1 || s.PasswordLifetimeDays > 3650:
		return Source{}, fmt.Errorf(errPrefix+`field "passwordLifetimeDays" is %d; use 1..3650 days, or -1 for passwords that never expire`, s.PasswordLifetimeDays)
	}
	if s.CheckRepository == "" {
		s.CheckRepository = DefaultCheckRepository
	}
	if !repoRE.MatchString(s.CheckRepository) {
		return Source{}, errors.New(errPrefix + `field "checkRepository" is not a repository name (lower-case path like hello-world or team/app)`)
	}
	// The cloud: from the login server's suffix; a stand-in login server (the test kit's
	// emulator, see New) is Azure's public cloud.
	cloud, ok := CloudOf(strings.ToLower(loginHost(s.LoginServer)))
	if !ok {
		cloud = Clouds[0]
	}
	for _, u := range []struct {
		field string
		val   *string
		def   string
	}{{"authorityUrl", &s.AuthorityURL, "https://" + cloud.Authorities[0]}, {"managementUrl", &s.ManagementURL, "https://" + cloud.Management}} {
		if *u.val == "" {
			*u.val = u.def
		}
		if _, err := httpapi.BaseURL(errPrefix+`field "`+u.field+`"`, *u.val); err != nil {
			return Source{}, err
		}
		*u.val = strings.TrimRight(strings.TrimSpace(*u.val), "/")
	}
	if s.ManagementScope == "" {
		s.ManagementScope = cloud.Scope()
	}
	if s.Federated && s.AssertionAudience == "" {
		s.AssertionAudience = DefaultAssertionAudience
	}
	if s.Federated && (len(s.AssertionAudience) > 1000 || strings.ContainsAny(s.AssertionAudience, " \t\n")) {
		return Source{}, errors.New(errPrefix + `field "assertionAudience" must be one audience without spaces, e.g. api://AzureADTokenExchange`)
	}
	if s.ManagementScope != cloud.Scope() {
		return Source{}, fmt.Errorf(errPrefix+`field "managementScope" must be %s, the Azure Resource Manager of %s (the cloud of "loginServer"); leave it out for that default`, cloud.Scope(), cloud.Name)
	}
	return s, nil
}

// ACR is the azure-container-registry upstream.
type ACR struct {
	src        Source
	token      TokenID
	registry   string
	loginHosts pinned.Hosts
	authority  string
	management string
	entra      *httpapi.Caller
	mgmt       *httpapi.Caller
	opts       upstream.Options

	mu         sync.Mutex
	aadToken   string // Entra ID access token for ARM, reused within the process
	aadExpires time.Time
	// wid gives the web identity token in federated mode (nil otherwise).
	wid *webidentity.Cache
}

var _ upstream.Upstream = (*ACR)(nil)

// New builds the upstream from the source secret's JSON.
func New(source []byte, opts upstream.Options) (*ACR, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, err
	}
	tid, err := ParseTokenID(src.TokenID)
	if err != nil { // ParseSource checked it; keep the two in step all the same
		return nil, fmt.Errorf(errPrefix+`field "tokenId" %v`, err)
	}
	// The pins: the login server is an ACR host (or a stand-in), and Entra ID and ARM are
	// that cloud's.
	login, err := opts.CheckURL(errPrefix+`field "loginServer"`, src.LoginServer, RegistryHosts)
	if err != nil {
		return nil, err
	}
	loginURL, _ := url.Parse(login)
	cloud, ok := CloudOf(loginURL.Hostname())
	if !ok {
		cloud = Clouds[0] // a stand-in: ParseSource defaulted to Azure's public cloud too
	}
	authority, err := opts.CheckURL(errPrefix+`field "authorityUrl"`, src.AuthorityURL, cloud.AuthorityHosts())
	if err != nil {
		return nil, err
	}
	management, err := opts.CheckURL(errPrefix+`field "managementUrl"`, src.ManagementURL, cloud.ManagementHosts())
	if err != nil {
		return nil, err
	}
	src.LoginServer = loginURL.Host
	if loginURL.Scheme == "http" { // a plain-http stand-in keeps its scheme for the login check
		src.LoginServer = login
	}
	reg, err := opts.LoginRegistry(LoginHosts(loginURL.Hostname()), src.LoginServer, "the login check goes only to the source's \"loginServer\"")
	if err != nil {
		return nil, err
	}
	var wid *webidentity.Cache
	if src.Federated {
		wid = webidentity.NewCache(opts.WebIdentity, opts.Clock())
	}
	return &ACR{
		wid:        wid,
		src:        src,
		token:      tid,
		registry:   reg,
		loginHosts: LoginHosts(loginURL.Hostname()),
		authority:  authority,
		management: management,
		opts:       opts,
		entra:      &httpapi.Caller{Service: "Microsoft Entra ID", Client: opts.Client(cloud.AuthorityHosts()), Now: opts.Clock(), Sleep: opts.Wait},
		mgmt:       &httpapi.Caller{Service: "Azure Resource Manager", Client: opts.Client(cloud.ManagementHosts()), Now: opts.Clock(), Sleep: opts.Wait},
	}, nil
}

// Provider describes azure-container-registry to the rotation engine and the provisioner.
var Provider = upstream.Provider{
	Registry:      ptcsecret.UpstreamACR,
	New:           func(source []byte, opts upstream.Options) (upstream.Upstream, error) { return New(source, opts) },
	FixedUsername: true, // every password of the token logs in as the token name
	// No default: every registry has its own <name>.azurecr.io host.
	DefaultRegistryURL: "",
	RegistryHosts:      RegistryHosts,
}

// Registry implements upstream.Upstream.
func (a *ACR) Registry() string { return ptcsecret.UpstreamACR }

// FederatedIdentity implements upstream.Federated: the Entra app ("<tenantId>/<clientId>") whose
// federated credential trusts the function role, in federated mode.
func (a *ACR) FederatedIdentity() (string, bool) {
	return a.src.TenantID + "/" + a.src.ClientID, a.src.Federated
}

// Username is the registry login name of the passwords this upstream mints: the token name.
func (a *ACR) Username() string { return a.token.Name }

// Retries reports how many API calls were retried (429 or transient), for logs and benchmarks.
func (a *ACR) Retries() int { return a.entra.Retries + a.mgmt.Retries }

// StageFor returns the custom staging label that records slot.
func StageFor(slot string) string {
	if slot == Password2 {
		return StagePassword2
	}
	return StagePassword1
}

// ChooseSlot returns the slot to regenerate given the AWSCURRENT version's staging labels (see
// the package documentation); guessed reports that AWSCURRENT carries no slot label, so the
// choice is an assumption worth a warning.
func ChooseSlot(currentStages []string) (slot string, guessed bool, err error) {
	has1, has2 := slices.Contains(currentStages, StagePassword1), slices.Contains(currentStages, StagePassword2)
	switch {
	case has1 && has2:
		return "", false, fmt.Errorf("azure-container-registry: the AWSCURRENT version carries both %s and %s, so the password slot it uses is unknown; remove the wrong label with UpdateSecretVersionStage", StagePassword1, StagePassword2)
	case has1:
		return Password2, false, nil
	case has2:
		return Password1, false, nil
	case len(currentStages) == 0:
		return Password1, false, nil // no secret yet: the provisioner's first password
	default:
		return Password2, true, nil
	}
}

// Mint implements upstream.Upstream: regenerate the slot AWSCURRENT does not use.
func (a *ACR) Mint(ctx context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	slot, guessed, err := ChooseSlot(req.CurrentStages)
	if err != nil {
		return upstream.Minted{}, err
	}
	log := a.opts.Log()
	if guessed {
		log.WarnContext(ctx, "AWSCURRENT carries no ACR slot label; assuming it uses password1 and regenerating password2 (if it used password2 it stops working until this rotation finishes)",
			"token", a.token.Name, "registry", a.token.Registry, "slot", slot)
	}
	var expiry time.Time
	if a.src.PasswordLifetimeDays > 0 {
		expiry = a.opts.Clock()().UTC().Add(time.Duration(a.src.PasswordLifetimeDays) * 24 * time.Hour).Truncate(time.Second)
	}
	res, err := a.generateCredentials(ctx, slot, expiry)
	if err != nil {
		return upstream.Minted{}, err
	}
	var value, expiresAt string
	for _, p := range res.Passwords {
		if strings.EqualFold(p.Name, slot) {
			value, expiresAt = p.Value, p.Expiry
		}
	}
	if value == "" {
		//lint:ignore ST1005 Azure Resource Manager is a proper noun
		return upstream.Minted{}, fmt.Errorf("Azure Resource Manager: generate %s of ACR token %s: the answer carried no value for %s", slot, a.token.Name, slot)
	}
	username := res.Username
	if username == "" {
		username = a.token.Name
	}
	tok := upstream.Token{ID: slot, Label: req.Label, ExpiresAt: expiry}
	if t, err := time.Parse(time.RFC3339, expiresAt); err == nil {
		tok.ExpiresAt = t
	}
	log.InfoContext(ctx, "regenerated ACR token password", "token", a.token.Name, "registry", a.token.Registry, "slot", slot, "expires_at", timeOrEmpty(tok.ExpiresAt))
	return upstream.Minted{
		Credential: upstream.Credential{Username: username, AccessToken: value},
		Token:      tok,
		Stages:     []string{StageFor(slot)},
	}, nil
}

// Tokens implements upstream.Upstream. ACR passwords carry no labels and nothing is ever left
// to revoke: regenerating a slot replaces its password.
func (a *ACR) Tokens(context.Context, string) ([]upstream.Token, error) { return nil, nil }

// Revoke implements upstream.Upstream as a no-op: the next rotation's regeneration of the slot
// is what invalidates a password (see the package documentation).
func (a *ACR) Revoke(context.Context, upstream.Token) error { return nil }

// RetireAll implements upstream.Retirer: it regenerates both password slots and forgets the new
// values, so no password this project ever stored still works. One ACR token backs one managed
// secret only, so nothing else loses its login.
func (a *ACR) RetireAll(ctx context.Context) error {
	for _, slot := range []string{"password1", "password2"} {
		// A day's expiry bounds the throw-away value even though nobody ever holds it.
		if _, err := a.generateCredentials(ctx, slot, a.opts.Clock()().UTC().Add(24*time.Hour).Truncate(time.Second)); err != nil {
			return fmt.Errorf("retiring %s of ACR token %s: %w", slot, a.token.Name, err)
		}
	}
	a.opts.Log().InfoContext(ctx, "retired both ACR token passwords", "token", a.token.Name, "registry", a.token.Registry)
	return nil
}

var _ upstream.Retirer = (*ACR)(nil)

// Verify implements upstream.Upstream: a pull token from the registry's token endpoint with
// Basic tokenName:password. A refused or unreachable login is retried with backoff while a new
// password replicates, until shortly before ctx's deadline (at most VerifyBudget of waiting).
func (a *ACR) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	target := registryauth.Target{Registry: a.registry, Repository: a.src.CheckRepository}
	rc := registryauth.Credential{Username: cred.Username, Password: cred.AccessToken}
	budget := VerifyBudget
	dl, hasDL := ctx.Deadline()
	if hasDL {
		budget = min(budget, time.Until(dl)-VerifyMargin)
	}
	var waited time.Duration
	wait := VerifyFirstWait
	for attempt := 1; ; attempt++ {
		err := registryauth.Check(ctx, a.opts.Client(a.loginHosts), target, rc)
		if err == nil {
			if attempt > 1 {
				a.opts.Log().InfoContext(ctx, "ACR accepted the new password", "attempts", attempt, "waited", waited.String())
			}
			return upstream.Verification{}, nil
		}
		refused := errors.Is(err, registryauth.ErrBadCredentials)
		if !refused && !errors.Is(err, registryauth.ErrUnreachable) {
			return upstream.Verification{}, err
		}
		outOfTime := ctx.Err() != nil || waited+wait > budget || (hasDL && time.Until(dl)-VerifyMargin < wait)
		if !outOfTime {
			a.opts.Log().InfoContext(ctx, "ACR login not accepted yet; waiting for the new password to replicate", "attempt", attempt, "wait", wait.String())
			if werr := a.opts.Wait(ctx, wait); werr == nil {
				waited += wait
				wait = min(wait*2, VerifyMaxWait)
				continue
			}
		}
		if refused {
			return upstream.Verification{}, fmt.Errorf("the new ACR password was still refused after %d attempts over %s; ACR can take about a minute to replicate a new password — the rotation will be retried: %w", attempt, waited, err)
		}
		return upstream.Verification{}, fmt.Errorf("the ACR registry could not be reached after %d attempts over %s — the rotation will be retried: %w", attempt, waited, err)
	}
}

// loginHost is the host of a login server given as a host or a URL.
func loginHost(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
