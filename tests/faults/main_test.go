package faults

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// moto is the one moto_server the package shares, for the fault-free runs (see smServer;
// every run uses its own secret names). Its Endpoint is testenv's one-request-at-a-time gate,
// so a fault a run sees is always the one it injected, never moto's own thread-safety bug.
var moto *testenv.Moto

func TestMain(m *testing.M) {
	flag.Parse()
	// Many cases wait on a hang deadline rather than on a CPU, so run more of them at once
	// than the default (GOMAXPROCS) unless -parallel was given.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(max(16, 8*runtime.GOMAXPROCS(0))))
	}
	var err error
	if moto, err = testenv.StartMoto(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	moto.Stop()
	if n := hangReruns.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "faults: %d hang-case runs were repeated with a longer deadline (the machine was too busy for the short one)\n", n)
	}
	if path := os.Getenv("PTC_WRITE_MATRIX"); path != "" {
		if err := writeMatrix(path); err != nil {
			fmt.Fprintln(os.Stderr, "writing the matrix:", err)
			code = 1
		}
	}
	os.Exit(code)
}
