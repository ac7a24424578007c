package faults

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// moto is the one moto_server the package shares (every case uses its own secret names), as
// the tests see it: behind the gate of newMotoGate.
var moto *testenv.Moto

// motoConcurrency is how many requests moto_server gets at once. It serves a few hundred calls
// a second whatever the concurrency (one Python process), and more requests in flight only make
// each slower; the gate lets more cases run at once than moto could serve (many of them wait on
// a hang deadline) without piling up on moto.
const motoConcurrency = 2

func TestMain(m *testing.M) {
	flag.Parse()
	// Most cases wait on moto, the emulators or a hang deadline rather than on a CPU, so run
	// more of them at once than the default (GOMAXPROCS) unless -parallel was given.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(max(8, 4*runtime.GOMAXPROCS(0))))
	}
	real, err := testenv.StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gate := newMotoGate(real.Endpoint, motoConcurrency)
	moto = &testenv.Moto{Endpoint: gate.URL}
	code := m.Run()
	gate.Close()
	real.Stop()
	if path := os.Getenv("PTC_WRITE_MATRIX"); path != "" {
		if err := writeMatrix(path); err != nil {
			fmt.Fprintln(os.Stderr, "writing the matrix:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newMotoGate is a reverse proxy to moto_server that lets at most n requests through at once.
func newMotoGate(endpoint string, n int) *httptest.Server {
	target, _ := url.Parse(endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = sharedTransport
	slots := make(chan struct{}, n)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			http.Error(w, "client went away", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-slots }()
		proxy.ServeHTTP(w, r)
	}))
}
