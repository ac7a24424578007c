package kit

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrRedirect is what NoRedirects refuses with; errors.Is finds it through the *url.Error the
// http.Client wraps it in.
var ErrRedirect = errors.New("redirect refused")

// NoRedirects is an http.Client CheckRedirect that follows nothing. Every client of this
// project carries a credential (a Basic or Bearer header, a PRIVATE-TOKEN, a password or client
// secret in a POST body), and Go's client re-sends most of them to the redirect's target — also
// to another host and from https to http — which would hand the credential to whoever answers a
// 3xx. The error names both hosts, never the URLs' paths or queries, which may carry tokens
// (http.Client wraps it in a *url.Error that does quote the target URL: report the URL only
// through a redaction, as httpapi does).
func NoRedirects(req *http.Request, via []*http.Request) error {
	from := "?"
	if len(via) > 0 && via[len(via)-1].URL != nil {
		from = via[len(via)-1].URL.Host
	}
	return fmt.Errorf("%w: %s answered with a redirect to %s://%s; this client follows none (a redirect would carry the credential to the other host)",
		ErrRedirect, from, req.URL.Scheme, req.URL.Host)
}

// Client returns c with NoRedirects set and its transport wrapped in RefuseRedirects (a copy;
// c itself is not changed). nil means a client with the given timeout.
func Client(c *http.Client, timeout time.Duration) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: timeout}
	}
	cp := *c
	cp.CheckRedirect = NoRedirects
	cp.Transport = RefuseRedirects(cp.Transport)
	return &cp
}

// RefuseRedirects wraps a transport so that any 3xx answer becomes an error (naming both hosts)
// at the transport itself. It catches the clients a library builds around a transport it was
// given — go-containerregistry's registry ping and token exchange make their own http.Client,
// which follows redirects — where CheckRedirect cannot reach. nil means http.DefaultTransport.
func RefuseRedirects(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if _, ok := rt.(refuseRedirects); ok {
		return rt
	}
	return refuseRedirects{rt}
}

type refuseRedirects struct{ inner http.RoundTripper }

func (r refuseRedirects) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
		return resp, err
	}
	resp.Body.Close()
	target := "an unnamed location"
	if loc, lerr := resp.Location(); lerr == nil {
		target = loc.Scheme + "://" + loc.Host
	}
	return nil, fmt.Errorf("%w: %s answered %d with a redirect to %s; this client follows none (a redirect would carry the credential to the other host)",
		ErrRedirect, req.URL.Host, resp.StatusCode, target)
}
