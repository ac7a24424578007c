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

// pullBudget reads the credential's remaining pulls from the ratelimit headers of a manifest
// HEAD, which Docker Hub does not count as a pull. A credential without a limit (a paid plan)
// gets no headers, and a probe that fails is logged: either way v reports nothing.
func (d *DockerHub) pullBudget(ctx context.Context, cred upstream.Credential) (v upstream.Verification) {
	ctx, cancel := context.WithTimeout(ctx, pullProbeTimeout)
	defer cancel()
	h, err := registryauth.HeadManifest(ctx, d.opts.Client(RegistryHosts.Union(RealmHosts)), registryauth.Target{Registry: d.registry, Repository: PullProbeRepository},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken}, PullProbeReference)
	if err != nil {
		d.opts.Log().WarnContext(ctx, "could not read the credential's Docker Hub pull budget (the login check passed)", "error", err.Error())
		return v
	}
	return parsePullBudget(h)
}

// parsePullBudget reads "ratelimit-limit: 100;w=21600" and "ratelimit-remaining: 20;w=21600"
// (pulls, and the window in seconds). Missing or unreadable headers report nothing.
func parsePullBudget(h http.Header) (v upstream.Verification) {
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
