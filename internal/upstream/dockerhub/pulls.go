package dockerhub

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Where testSecret reads the pull budget: the repository and tag Docker's "Docker Hub pull
// usage and limits" page probes (`curl --head .../v2/ratelimitpreview/test/manifests/latest`).
const (
	PullProbeRepository = "ratelimitpreview/test"
	PullProbeReference  = "latest"
	// pullProbeTimeout bounds the probe: it is information, never a reason to fail a step.
	pullProbeTimeout = 10 * time.Second
)

// verifyWithBudget is Verify's one handshake: a pull token for checkRepository and the probe
// repository from one token request, then a manifest HEAD of the probe with that token, whose
// ratelimit headers are the credential's pull budget (Docker Hub does not count a HEAD as a
// pull). A refused credential is the check's error; a credential without a limit (a paid plan)
// gets no headers, and a probe that fails is logged: either way v reports no budget.
func verifyWithBudget(ctx context.Context, opts upstream.Options, registry, checkRepository string, cred upstream.Credential) (upstream.Verification, error) {
	res, err := registryauth.CheckAndProbe(ctx, opts.Client(RegistryHosts.Union(RealmHosts)), registryauth.Target{Registry: registry, Repository: checkRepository},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken},
		registryauth.Probe{Repository: PullProbeRepository, Reference: PullProbeReference, Timeout: pullProbeTimeout})
	if err != nil {
		return upstream.Verification{}, err
	}
	if res.Err != nil {
		opts.Log().WarnContext(ctx, "could not read the credential's Docker Hub pull budget (the login check passed)", "error", res.Err.Error())
		return upstream.Verification{}, nil
	}
	return parsePullBudget(res.Header), nil
}

// parsePullBudget reads "ratelimit-limit: 100;w=21600" and "ratelimit-remaining: 20;w=21600"
// (pulls, and the window in seconds). No rate-limit header at all is an unlimited plan (Docker's
// "usage and limits" page: no headers, no limit); unreadable headers report nothing.
func parsePullBudget(h http.Header) (v upstream.Verification) {
	if h.Get("Ratelimit-Remaining") == "" && h.Get("Ratelimit-Limit") == "" {
		v.PullsUnlimited = true
		return v
	}
	remaining, window, ok := parseRateLimit(h.Get("Ratelimit-Remaining"))
	if !ok {
		return v
	}
	v.PullsRemaining = &remaining
	if limit, w, ok := parseRateLimit(h.Get("Ratelimit-Limit")); ok {
		v.PullLimit = &limit
		if window == 0 {
			window = w
		}
	}
	v.PullWindow = window
	return v
}

// parseRateLimit reads "N" or "N;w=S" (the first item of a list), S in seconds.
func parseRateLimit(s string) (n int, window time.Duration, ok bool) {
	item, _, _ := strings.Cut(s, ",")
	parts := strings.Split(item, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n < 0 {
		return 0, 0, false
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if secs, err := strconv.Atoi(strings.TrimSpace(val)); strings.EqualFold(strings.TrimSpace(k), "w") && err == nil && secs > 0 {
			window = time.Duration(secs) * time.Second
		}
	}
	return n, window, true
}
