// Package pinned decides which hosts an upstream may send a credential to.
//
// ECR accepts only fixed upstream URLs for the registries this project serves, and every call an
// upstream makes carries a credential (a password, a token, a client secret, or the token being
// checked). So each upstream names its hosts — registry, token realm, API — as a Hosts value, and
// two checks use it: CheckURL refuses a configured URL (tag, property, source field) that names
// another host, with an error saying which hosts are allowed; Transport refuses, at the HTTP
// transport, any request to another host, whatever produced the URL (a registry's
// WWW-Authenticate realm, a pagination link, a long-running operation's Location).
//
// The only way around the pin is Standins: loopback endpoints (emulators on this machine) that
// may stand in for any pinned host. The functions build Standins from one environment variable
// (awsenv.LoopbackStandinsVar) that the deployed template never sets; in-process tests pass
// them directly. A loopback server that is not listed is refused like any other host, which is
// what lets tests play an attacker's host on 127.0.0.1.
package pinned

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// ErrNotPinned is wrapped by every refusal of a host.
var ErrNotPinned = errors.New("host is not one this upstream may send credentials to")

// Hosts is the set of hosts one upstream may reach. Hosts are DNS names reached over https on
// the default port.
type Hosts struct {
	// Upstream names the upstream in errors, e.g. "docker-hub".
	Upstream string
	// Exact are the allowed host names, e.g. "registry-1.docker.io".
	Exact []string
	// Suffixes are allowed name suffixes including the leading dot, e.g. ".azurecr.io"; the
	// label before the suffix must be non-empty.
	Suffixes []string
}

// Union returns a Hosts allowing every host any of h or others allows, named after h.
func (h Hosts) Union(others ...Hosts) Hosts {
	u := Hosts{Upstream: h.Upstream, Exact: append([]string(nil), h.Exact...), Suffixes: append([]string(nil), h.Suffixes...)}
	for _, o := range others {
		u.Exact = append(u.Exact, o.Exact...)
		u.Suffixes = append(u.Suffixes, o.Suffixes...)
	}
	return u
}

// Allows reports whether name (a host name without port) is one of h's hosts.
func (h Hosts) Allows(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, e := range h.Exact {
		if name == strings.ToLower(e) {
			return true
		}
	}
	for _, s := range h.Suffixes {
		s = strings.ToLower(s)
		prefix := strings.TrimSuffix(name, s)
		if strings.HasSuffix(name, s) && prefix != "" && !strings.HasPrefix(prefix, ".") && !strings.HasSuffix(prefix, ".") && !strings.Contains(prefix, "..") {
			return true
		}
	}
	return false
}

// String lists the allowed hosts for error messages: "a.example, b.example or *.c.example".
func (h Hosts) String() string {
	var all []string
	all = append(all, h.Exact...)
	for _, s := range h.Suffixes {
		all = append(all, "*"+s)
	}
	sort.Strings(all)
	switch len(all) {
	case 0:
		return "no host"
	case 1:
		return all[0]
	}
	return strings.Join(all[:len(all)-1], ", ") + " or " + all[len(all)-1]
}

// Standins is the set of loopback endpoints (host:port) allowed to stand in for any pinned host.
// The zero value allows none: the deployed functions' state.
type Standins struct{ set map[string]bool }

// ParseStandins reads a comma-separated list of loopback host:port endpoints, e.g.
// "127.0.0.1:4001,[::1]:4002". An empty string is no stand-ins. Anything that is not a loopback
// host with a port is an error naming the entry, so a typo cannot widen the pin.
func ParseStandins(v string) (Standins, error) {
	s := Standins{}
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		host, port, err := net.SplitHostPort(entry)
		if err != nil || port == "" || !kit.IsLoopback(host) {
			return Standins{}, fmt.Errorf("stand-in %q: give a loopback host:port such as 127.0.0.1:4001", entry)
		}
		if s.set == nil {
			s.set = map[string]bool{}
		}
		s.set[strings.ToLower(net.JoinHostPort(host, port))] = true
	}
	return s, nil
}

// ParseStandinsVar is ParseStandins for the value of the environment variable name (the
// functions' awsenv.LoopbackStandinsVar): the error names the variable and says to leave it
// unset in a deployment. The functions stop at cold start on it, so a typo never runs with the
// pin widened or silently off.
func ParseStandinsVar(name, value string) (Standins, error) {
	s, err := ParseStandins(value)
	if err != nil {
		return Standins{}, fmt.Errorf("%s: %w (it lists the loopback emulators that may stand in for pinned hosts; leave it unset in a deployment)", name, err)
	}
	return s, nil
}

// NewStandins returns Standins for the given loopback endpoints (host:port, or http(s) URLs as
// httptest servers report them). It panics on anything else: it is for tests and wiring, where
// a wrong entry is a programming error.
func NewStandins(endpoints ...string) Standins {
	var parts []string
	for _, e := range endpoints {
		if u, err := url.Parse(e); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			e = u.Host
		}
		parts = append(parts, e)
	}
	s, err := ParseStandins(strings.Join(parts, ","))
	if err != nil {
		panic(err)
	}
	return s
}

// Empty reports whether no stand-in is allowed.
func (s Standins) Empty() bool { return len(s.set) == 0 }

// Allows reports whether hostport (as in a URL's Host, with its port) is a listed stand-in.
func (s Standins) Allows(hostport string) bool {
	if len(s.set) == 0 {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	return s.set[strings.ToLower(net.JoinHostPort(host, port))]
}

// String lists the stand-ins, sorted, comma-separated (the environment variable's format).
func (s Standins) String() string {
	var all []string
	for k := range s.set {
		all = append(all, k)
	}
	sort.Strings(all)
	return strings.Join(all, ",")
}

// Allowed reports whether a request to u may go out: https to one of hosts on the default port,
// or any http(s) request to a listed stand-in. The error says why not.
func Allowed(u *url.URL, hosts Hosts, standins Standins) error {
	if u == nil || u.Host == "" {
		return fmt.Errorf("%w: no host in the URL", ErrNotPinned)
	}
	if (u.Scheme == "http" || u.Scheme == "https") && standins.Allows(u.Host) {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: %s://%s: %s sends credentials only to %s, over https", ErrNotPinned, u.Scheme, u.Host, hosts.Upstream, hosts)
	}
	if p := u.Port(); p != "" && p != "443" {
		return fmt.Errorf("%w: %s: %s sends credentials only to %s, on the default https port", ErrNotPinned, u.Host, hosts.Upstream, hosts)
	}
	if !hosts.Allows(u.Hostname()) {
		return fmt.Errorf("%w: %s: %s sends credentials only to %s", ErrNotPinned, u.Host, hosts.Upstream, hosts)
	}
	return nil
}

// CheckURL parses a configured base URL (a tag, property or source field named by field) and
// refuses it unless Allowed. A bare host ("ghcr.io") means https. The URL must not carry
// credentials, a query or a fragment.
func CheckURL(field, raw string, hosts Hosts, standins Standins) (*url.URL, error) {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	if s == "" {
		return nil, fmt.Errorf("%s: empty; use https://%s", field, firstHost(hosts))
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: %q is not a URL or host name; use https://%s", field, raw, firstHost(hosts))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: credentials in the URL are not allowed", field)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: a query or fragment is not allowed in %s", field, u.Host)
	}
	if err := Allowed(u, hosts, standins); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return u, nil
}

func firstHost(h Hosts) string {
	if len(h.Exact) > 0 {
		return h.Exact[0]
	}
	if len(h.Suffixes) > 0 {
		return "NAME" + h.Suffixes[0]
	}
	return "HOST"
}

// Transport wraps inner (nil: http.DefaultTransport) so that a request to a host Allowed
// refuses never leaves the process: the refusal happens before any byte, header or credential
// is sent.
func Transport(inner http.RoundTripper, hosts Hosts, standins Standins) http.RoundTripper {
	if inner == nil {
		inner = http.DefaultTransport
	}
	return &transport{inner: inner, hosts: hosts, standins: standins}
}

type transport struct {
	inner    http.RoundTripper
	hosts    Hosts
	standins Standins
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := Allowed(req.URL, t.hosts, t.standins); err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTripper contract: close the body even on error
		}
		return nil, fmt.Errorf("refusing %s %s://%s%s: %w", req.Method, req.URL.Scheme, req.URL.Host, req.URL.Path, err)
	}
	return t.inner.RoundTrip(req)
}

// Client returns a copy of c (nil: a client without timeout) whose transport is pinned to hosts.
// Redirect handling is the caller's (kit.Client); wrap the result, not the other way round, so
// a refused redirect is reported as a redirect.
func Client(c *http.Client, hosts Hosts, standins Standins) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	cp := *c
	cp.Transport = Transport(cp.Transport, hosts, standins)
	return &cp
}
