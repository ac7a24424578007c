package registryauth

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// manifestAccept are the manifest media types a HEAD asks for, as a pull would.
const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// Probe is a manifest CheckAndProbe sends a HEAD for with the login check's own token.
type Probe struct {
	// Repository and Reference (a tag or digest) name the manifest.
	Repository, Reference string
	// Timeout bounds the HEAD alone; zero: only ctx bounds it.
	Timeout time.Duration
}

// ProbeResult is what the HEAD answered. It never decides the login check.
type ProbeResult struct {
	// Header is the answer's headers (nil when no answer came).
	Header http.Header
	// Err is nil for a 2xx answer, else one of Check's kinds.
	Err error
}

// CheckAndProbe is Check and a manifest HEAD in one handshake: GET /v2/, then one request to
// the token realm asking for a pull scope on target.Repository and on probe.Repository (the
// distribution token spec repeats the "scope" parameter, and the auth service grants each scope
// the account may pull), then HEAD /v2/<probe.Repository>/manifests/<probe.Reference> with that
// token — three registry calls where Check followed by a separate probe handshake made five. A
// HEAD is not a pull (Docker Hub does not count it towards pull limits, and answers it with the
// ratelimit-limit / ratelimit-remaining headers a GET would carry).
//
// err is the login check, exactly as Check reports it; when it is nil the probe's outcome is in
// the result, and a failed probe does not make err non-nil. The same transport rules hold: the
// client's transport (pinned hosts), no redirects, no plain http but to loopback.
func CheckAndProbe(ctx context.Context, client *http.Client, target Target, cred Credential, probe Probe) (ProbeResult, error) {
	ctx, cancel := withClientTimeout(ctx, client)
	defer cancel()
	s, err := login(ctx, client, target, cred, probe.Repository)
	if err != nil {
		return ProbeResult{}, err
	}
	if probe.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probe.Timeout)
		defer cancel()
	}
	u := s.reg.Scheme() + "://" + s.reg.RegistryStr() + "/v2/" + s.reg.Repo(probe.Repository).RepositoryStr() + "/manifests/" + url.PathEscape(probe.Reference)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return ProbeResult{Err: &Error{Registry: target.Registry, Kind: ErrProtocol, Detail: "bad manifest reference"}}, nil
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return ProbeResult{Err: classify(target.Registry, err, cred)}, nil
	}
	resp.Body.Close()
	return ProbeResult{Header: resp.Header, Err: classifyStatus(target.Registry, resp.StatusCode)}, nil
}
