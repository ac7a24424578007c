package registryauth

import (
	"context"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// manifestAccept are the manifest media types a HEAD asks for, as a pull would.
const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// HeadManifest runs the token handshake for target.Repository with cred, like Check, then sends
// HEAD /v2/<repository>/manifests/<reference> and returns the answer's headers. A HEAD is not a
// pull (Docker Hub does not count it towards pull limits, and answers it with the
// ratelimit-limit / ratelimit-remaining headers a GET would carry). Errors are Check's kinds.
func HeadManifest(ctx context.Context, client *http.Client, target Target, cred Credential, reference string) (http.Header, error) {
	reg, err := ParseRegistry(target.Registry)
	if err != nil {
		return nil, &Error{Registry: target.Registry, Kind: ErrProtocol, Detail: err.Error()}
	}
	repo := reg.Repo(target.Repository)
	inner := http.DefaultTransport
	if client != nil && client.Transport != nil {
		inner = client.Transport
	}
	if client != nil && client.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, client.Timeout)
		defer cancel()
	}
	// As in Check: no redirects, no plain http but to loopback.
	rec := &challengeRecorder{inner: kit.RefuseRedirects(inner)}
	var auth authn.Authenticator = authn.Anonymous
	if cred.Username != "" || cred.Password != "" {
		auth = &authn.Basic{Username: cred.Username, Password: cred.Password}
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, rec, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, classify(target.Registry, err, cred)
	}
	u := reg.Scheme() + "://" + reg.RegistryStr() + "/v2/" + repo.RepositoryStr() + "/manifests/" + url.PathEscape(reference)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return nil, &Error{Registry: target.Registry, Kind: ErrProtocol, Detail: "bad manifest reference"}
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, classify(target.Registry, err, cred)
	}
	resp.Body.Close()
	if err := classifyStatus(target.Registry, resp.StatusCode); err != nil {
		return resp.Header, err
	}
	return resp.Header, nil
}
