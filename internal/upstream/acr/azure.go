package acr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// APIVersion is the Microsoft.ContainerRegistry api-version this package speaks.
const APIVersion = "2023-07-01"

const (
	// tokenMargin is how long before its expiry an Entra ID token is replaced.
	tokenMargin = 5 * time.Minute
	// maxPolls bounds how often a long-running generateCredentials is polled (ctx bounds it too).
	maxPolls = 60
	// defaultPollWait is used when a 202 carries no Retry-After; maxPollWait caps a hint.
	defaultPollWait = 2 * time.Second
	maxPollWait     = 30 * time.Second
	// pollMargin is left before ctx's deadline: a poll wait that would eat into it is not
	// started, so the step reports the running operation instead of timing out.
	pollMargin = 5 * time.Second
	// mintAttempts bounds tries of generateCredentials on 5xx and network errors (httpapi
	// retries only idempotent methods; regenerating the unused slot again is harmless).
	mintAttempts = 3
)

// armToken returns an Entra ID access token for Azure Resource Manager, reusing the one this
// process already has until shortly before it expires.
func (a *ACR) armToken(ctx context.Context) (string, error) {
	a.mu.Lock()
	tok, exp := a.aadToken, a.aadExpires
	a.mu.Unlock()
	now := a.opts.Clock()()
	if tok != "" && now.Before(exp.Add(-tokenMargin)) {
		return tok, nil
	}
	var out struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	err := a.retrySafe(ctx, func() error {
		form, err := a.clientCredentials(ctx)
		if err != nil {
			return err
		}
		_, err = a.entra.Do(ctx, "get a token for Azure Resource Manager", httpapi.Request{
			Method: http.MethodPost,
			URL:    a.authority + "/" + url.PathEscape(a.src.TenantID) + "/oauth2/v2.0/token",
			Form:   form,
		}, &out)
		return err
	})
	if err != nil {
		if httpapi.IsStatus(err, http.StatusBadRequest, http.StatusUnauthorized) {
			if a.src.Federated {
				a.wid.Drop() // a refused assertion is not offered again
				return "", fmt.Errorf(`%w: check the source secret's fields "tenantId" and "clientId", and that app registration %s has a federated credential with issuer = this AWS account's outbound identity federation issuer URL, subject = this function's role ARN and audience %q (docs/deploy.md)`, err, a.src.ClientID, a.src.AssertionAudience)
			}
			return "", fmt.Errorf(`%w: check the source secret's fields "tenantId", "clientId" and "clientSecret" (a client secret expires; use its value, not its id)`, err)
		}
		return "", err
	}
	if out.AccessToken == "" {
		//lint:ignore ST1005 Microsoft Entra ID is a proper noun
		return "", errors.New("Microsoft Entra ID: get a token for Azure Resource Manager: the answer carried no access_token")
	}
	// expires_in is a number on the v2.0 endpoint and a string on v1; accept both.
	secs, perr := strconv.Atoi(strings.Trim(string(out.ExpiresIn), `"`))
	if perr != nil || secs <= 0 {
		secs = 600 // unknown lifetime: reuse briefly rather than not at all
	}
	a.mu.Lock()
	a.aadToken, a.aadExpires = out.AccessToken, now.Add(time.Duration(secs)*time.Second)
	a.mu.Unlock()
	return out.AccessToken, nil
}

// AssertionType is the client_assertion_type of a federated credential's token (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientCredentials is the form of the client-credentials grant: with the client secret, or in
// federated mode with the function role's web identity token as client_assertion.
func (a *ACR) clientCredentials(ctx context.Context) (url.Values, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {a.src.ClientID},
		"scope":      {a.src.ManagementScope},
	}
	if !a.src.Federated {
		form.Set("client_secret", a.src.ClientSecret)
		return form, nil
	}
	tok, err := a.wid.Token(ctx, webidentity.Request{Audience: a.src.AssertionAudience, Algorithm: webidentity.RS256, Duration: webidentity.DefaultDuration})
	if err != nil {
		return nil, fmt.Errorf("azure-container-registry federated mode: %w", err)
	}
	form.Set("client_assertion_type", AssertionType)
	form.Set("client_assertion", tok.JWT)
	return form, nil
}

func (a *ACR) dropToken() {
	a.mu.Lock()
	a.aadToken, a.aadExpires = "", time.Time{}
	a.mu.Unlock()
}

// arm makes one Azure Resource Manager call with the Entra ID token. A 401 means the cached
// token expired or was revoked: httpapi.DoWithSession gets a fresh one and repeats the call once.
func (a *ACR) arm(ctx context.Context, op string, req httpapi.Request, out any) (httpapi.Response, error) {
	return a.mgmt.DoWithSession(ctx, httpapi.Session{
		Token: a.armToken,
		Drop:  a.dropToken,
		Refreshing: func() {
			a.opts.Log().InfoContext(ctx, "Azure Resource Manager refused the cached Entra ID token; getting a new one", "op", op)
		},
	}, op, req, out)
}

// retrySafe repeats call on 5xx answers and network errors, for requests that are safe to repeat
// even though they are POSTs: an Entra ID token request, and regenerating the slot no stored
// version uses.
func (a *ACR) retrySafe(ctx context.Context, call func() error) error {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt >= mintAttempts || ctx.Err() != nil || !transient(err) {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		if werr := a.opts.Wait(ctx, wait); werr != nil {
			return err
		}
		wait *= 2
	}
}

func transient(err error) bool {
	var se *httpapi.StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// generateResult is the GenerateCredentialsResult of the ARM API.
type generateResult struct {
	Username  string `json:"username"`
	Passwords []struct {
		Name         string `json:"name"`
		Value        string `json:"value"`
		Expiry       string `json:"expiry"`
		CreationTime string `json:"creationTime"`
	} `json:"passwords"`
}

// generateCredentials regenerates one password slot of the token and returns ARM's answer,
// following the long-running form (202) to its end.
func (a *ACR) generateCredentials(ctx context.Context, slot string, expiry time.Time) (generateResult, error) {
	body := map[string]any{"tokenId": a.token.String(), "name": slot}
	if !expiry.IsZero() {
		body["expiry"] = expiry.UTC().Format(time.RFC3339)
	}
	u := a.management + pathEscapeAll(a.token.registryPath()) + "/generateCredentials?api-version=" + APIVersion
	op := "generate " + slot + " of ACR token " + a.token.Name
	var raw json.RawMessage
	var resp httpapi.Response
	err := a.retrySafe(ctx, func() error {
		raw = nil
		var err error
		resp, err = a.arm(ctx, op, httpapi.Request{Method: http.MethodPost, URL: u, JSON: body}, &raw)
		return err
	})
	if err != nil {
		return generateResult{}, a.explainARM(err)
	}
	if resp.StatusCode == http.StatusAccepted {
		raw, err = a.pollLRO(ctx, op, u, resp)
		if err != nil {
			return generateResult{}, err
		}
	}
	var out generateResult
	if err := json.Unmarshal(raw, &out); err != nil || len(raw) == 0 {
		//lint:ignore ST1005 Azure Resource Manager is a proper noun
		return generateResult{}, fmt.Errorf("Azure Resource Manager: %s: the answer is not a GenerateCredentialsResult", op)
	}
	return out, nil
}

// explainARM adds what to fix to an ARM refusal.
func (a *ACR) explainARM(err error) error {
	var se *httpapi.StatusError
	if !errors.As(err, &se) {
		return err
	}
	switch se.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf(`%w: Azure Resource Manager refused the Entra ID token; check that field "tenantId" is the tenant of the subscription in "tokenId" (and "managementScope" for a sovereign cloud)`, err)
	case http.StatusForbidden:
		return fmt.Errorf(`%w: the service principal of field "clientId" may not generate credentials on registry %s; give it a role with Microsoft.ContainerRegistry/registries/generateCredentials/action on that registry (Contributor does)`, err, a.token.Registry)
	case http.StatusNotFound:
		return fmt.Errorf(`%w: check field "tokenId": subscription %s, resource group %s, registry %s, token %s — one of them does not exist or the service principal cannot see it`, err, a.token.Subscription, a.token.ResourceGroup, a.token.Registry, a.token.Name)
	case http.StatusBadRequest:
		return fmt.Errorf(`%w: check fields "tokenId" and "passwordLifetimeDays"`, err)
	}
	return err
}

// pollLRO follows a 202 answer of generateCredentials to its result, by ARM's rules for an
// asynchronous POST action (Azure Resource Manager RPC, "Call Action POST Asynchronously" and
// "Azure-AsyncOperation Resource format"; azcore's runtime poller does the same with the REST
// spec's final-state-via: location):
//
//   - with an Azure-AsyncOperation header, poll it for the operation resource: 200 with
//     {"status"} where Succeeded, Failed and Canceled are terminal and anything else (InProgress,
//     a provider's own word) means running; a 4xx/5xx there is a failure to read the status, not
//     of the operation. On Succeeded, GET the Location for the result (or, without one, take the
//     resource's "properties");
//   - with a Location only, GET it until it stops answering 202: 200 carries the result, an
//     error answer is the operation's failure. A 200 that is itself an operation resource (the
//     REST spec's example Location is an …/operationStatuses/… URL) is read as one.
//
// Retry-After is honoured (capped at maxPollWait); no wait starts that would outlast ctx's
// deadline less pollMargin. The poll URLs come from the answer, so they must be on the
// management host: the bearer token is never sent anywhere else.
func (a *ACR) pollLRO(ctx context.Context, op, reqURL string, first httpapi.Response) (json.RawMessage, error) {
	asyncURL, err := a.pollURL(reqURL, first.Header.Get("Azure-AsyncOperation"), "Azure-AsyncOperation")
	if err != nil {
		return nil, err
	}
	locURL, err := a.pollURL(reqURL, first.Header.Get("Location"), "Location")
	if err != nil {
		return nil, err
	}
	if asyncURL == "" && locURL == "" {
		//lint:ignore ST1005 Azure Resource Manager is a proper noun
		return nil, fmt.Errorf("Azure Resource Manager: %s: answered 202 (running) without a Location or Azure-AsyncOperation header to follow", op)
	}
	hint, skipWait := first.Header, false
	var waited time.Duration
	for poll := 1; ; poll++ {
		if poll > maxPolls {
			//lint:ignore ST1005 Azure Resource Manager is a proper noun
			return nil, fmt.Errorf("Azure Resource Manager: %s: still running after %d polls over %s; the rotation will be retried", op, maxPolls, waited)
		}
		if !skipWait {
			wait := min(httpapi.RetryAfter(hint, a.opts.Clock()()), maxPollWait)
			if wait <= 0 {
				wait = defaultPollWait
			}
			// Deadlines are on the real clock (a context timer cannot use an injected one).
			if dl, ok := ctx.Deadline(); ok && time.Until(dl)-pollMargin < wait {
				//lint:ignore ST1005 Azure Resource Manager is a proper noun
				return nil, fmt.Errorf("Azure Resource Manager: %s: still running after %d polls over %s, and the next poll (in %s) would outlast this invocation; the rotation will be retried", op, poll-1, waited, wait)
			}
			if err := a.opts.Wait(ctx, wait); err != nil {
				//lint:ignore ST1005 Azure Resource Manager is a proper noun
				return nil, fmt.Errorf("Azure Resource Manager: %s: stopped waiting for the long-running operation: %w", op, err)
			}
			waited += wait
		}
		skipWait = false
		if asyncURL != "" {
			var st opStatus
			resp, err := a.arm(ctx, op+" (operation status)", httpapi.Request{Method: http.MethodGet, URL: asyncURL}, &st)
			if err != nil {
				return nil, a.explainPoll(err, "reading the operation's status")
			}
			hint = resp.Header
			done, err := st.outcome(op)
			if err != nil {
				return nil, err
			}
			if !done {
				continue
			}
			if locURL == "" {
				if len(st.Properties) > 0 && string(st.Properties) != "null" {
					return st.Properties, nil
				}
				//lint:ignore ST1005 Azure Resource Manager is a proper noun
				return nil, fmt.Errorf("Azure Resource Manager: %s: the operation succeeded but named no Location to read the new password from", op)
			}
			asyncURL, skipWait = "", true // read the result from Location now
			continue
		}
		var raw json.RawMessage
		resp, err := a.arm(ctx, op+" (operation result)", httpapi.Request{Method: http.MethodGet, URL: locURL}, &raw)
		if err != nil {
			// On the Location URL an error answer is the operation's own failure.
			return nil, a.explainPoll(err, "the long-running operation failed")
		}
		hint = resp.Header
		if resp.StatusCode == http.StatusAccepted {
			if loc := resp.Header.Get("Location"); loc != "" {
				if locURL, err = a.pollURL(reqURL, loc, "Location"); err != nil {
					return nil, err
				}
			}
			continue
		}
		if st, ok := asStatus(raw); ok {
			done, err := st.outcome(op)
			if err != nil {
				return nil, err
			}
			if !done {
				continue
			}
			if len(st.Properties) > 0 && string(st.Properties) != "null" {
				return st.Properties, nil
			}
			//lint:ignore ST1005 Azure Resource Manager is a proper noun
			return nil, fmt.Errorf("Azure Resource Manager: %s: the Location answered a finished operation resource without the new password", op)
		}
		return raw, nil
	}
}

// opStatus is ARM's operation resource (the Azure-AsyncOperation document).
type opStatus struct {
	Status     string          `json:"status"`
	Properties json.RawMessage `json:"properties"`
	Error      *armErrorBody   `json:"error"`
}

// armErrorBody is ARM's ErrorResponse error (common-types ErrorDetail).
type armErrorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details []armErrorBody `json:"details"`
}

func (e *armErrorBody) String() string {
	if e == nil {
		return "no error detail"
	}
	out := strings.TrimSpace(e.Code + " " + kit.Truncate(e.Message, 300))
	for i, d := range e.Details {
		if i == 3 {
			break
		}
		out += "; " + strings.TrimSpace(d.Code+" "+kit.Truncate(d.Message, 200))
	}
	return out
}

// outcome reads the status: done on Succeeded, an error on Failed or Canceled (with ARM's error
// body), not done on anything else.
func (st opStatus) outcome(op string) (bool, error) {
	switch strings.ToLower(st.Status) {
	case "succeeded":
		return true, nil
	case "failed", "canceled", "cancelled":
		//lint:ignore ST1005 Azure Resource Manager is a proper noun
		return false, fmt.Errorf("Azure Resource Manager: %s: the long-running operation ended %s (the rotation will be retried): %s", op, st.Status, st.Error)
	}
	return false, nil
}

// asStatus reports whether a 200 body is an operation resource rather than a result: it has a
// "status" string and no "passwords".
func asStatus(raw json.RawMessage) (opStatus, bool) {
	var probe struct {
		Status    *string         `json:"status"`
		Passwords json.RawMessage `json:"passwords"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.Status == nil || len(probe.Passwords) > 0 {
		return opStatus{}, false
	}
	var st opStatus
	if json.Unmarshal(raw, &st) != nil {
		return opStatus{}, false
	}
	return st, true
}

// explainPoll adds what to fix to a refused poll. A 403 there means the service principal may
// start the operation but not read it (Microsoft.ContainerRegistry/registries/operationStatuses/read).
func (a *ACR) explainPoll(err error, what string) error {
	var se *httpapi.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusForbidden {
		return fmt.Errorf(`%s: %w: the service principal of field "clientId" may not read the operation; give it Microsoft.ContainerRegistry/registries/operationStatuses/read on registry %s (Contributor has it)`, what, err, a.token.Registry)
	}
	if errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized {
		return a.explainARM(err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// pollURL resolves a poll URL from a response header and refuses one off the management host.
func (a *ACR) pollURL(reqURL, raw, header string) (string, error) {
	if raw == "" {
		return "", nil
	}
	base, _ := url.Parse(reqURL)
	u, err := base.Parse(raw)
	if err != nil {
		//lint:ignore ST1005 Azure Resource Manager is a proper noun
		return "", fmt.Errorf("Azure Resource Manager answered a %s header that is not a URL", header)
	}
	if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) {
		//lint:ignore ST1005 Azure Resource Manager is a proper noun
		return "", fmt.Errorf("Azure Resource Manager answered a %s header on another host (%s); refusing to send the Entra ID token there", header, u.Host)
	}
	return u.String(), nil
}

// pathEscapeAll escapes each segment of an ARM path (resource group names may hold parentheses
// and letters outside ASCII).
func pathEscapeAll(p string) string {
	seg := strings.Split(p, "/")
	for i, s := range seg {
		seg[i] = url.PathEscape(s)
	}
	return strings.Join(seg, "/")
}
