package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// rieModule and riePackage name the emulator pinned in tools.mod.
const (
	rieModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	riePackage = rieModule + "/cmd/aws-lambda-rie"
)

// Functions under test, as directories of functions/ and of PTC_BOOTSTRAP_DIR.
const (
	fnRotator     = "rotator"
	fnProvisioner = "provisioner"
)

var (
	// rieBin is the aws-lambda-rie executable.
	rieBin string
	// bootstraps maps a function name to its bootstrap executable, built for the host.
	bootstraps = map[string]string{}
	// moto is the moto_server every test shares (names are unique per test).
	moto *testenv.Moto
	// rotatorARN is the rotation function as moto's Lambda backend knows it (see motolambda_test.go).
	rotatorARN string
)

func TestMain(m *testing.M) {
	// aws-lambda-rie runs only on Linux (it starts the runtime through Linux process APIs).
	if runtime.GOOS != "linux" {
		fmt.Println("e2e: skipped: aws-lambda-rie runs only on Linux")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "ptc-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := buildAll(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if moto, err = testenv.StartMoto(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer moto.Stop()
	if rotatorARN, err = registerRotatorInMoto(moto.Endpoint); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: preparing moto's Lambda backend:", err)
		return 1
	}
	return m.Run()
}

// buildAll fills rieBin and bootstraps: prebuilt binaries when PTC_RIE_BIN (the executable) /
// PTC_BOOTSTRAP_DIR (holding <function>/bootstrap, the layout of `make build`) name them,
// otherwise fresh builds under tmp (in parallel; the go build cache makes repeats cheap).
func buildAll(tmp string) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return fmt.Errorf("finding the repository root: %w", err)
	}
	var jobs [][]string // go command arguments
	// Relative paths in the variables are taken from the repository root, where make and people
	// run commands (go test itself runs in the package directory).
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	if p := os.Getenv("PTC_RIE_BIN"); p != "" {
		rieBin = abs(p)
		if _, err := os.Stat(rieBin); err != nil {
			return fmt.Errorf("PTC_RIE_BIN names no file: %w", err)
		}
	} else {
		rieBin = filepath.Join(tmp, "aws-lambda-rie")
		jobs = append(jobs, []string{"build", "-modfile=" + filepath.Join(root, "tools.mod"), "-o", rieBin, riePackage})
	}
	cgo, trimpath := localcloud.HostBuildSettings()
	dir := os.Getenv("PTC_BOOTSTRAP_DIR")
	for _, fn := range []string{fnRotator, fnProvisioner} {
		if dir != "" {
			p := abs(filepath.Join(dir, fn, "bootstrap"))
			if err := localcloud.CheckHostBinary(p); err != nil {
				return fmt.Errorf("PTC_BOOTSTRAP_DIR: %w", err)
			}
			bootstraps[fn] = p
			continue
		}
		p := filepath.Join(tmp, fn, "bootstrap")
		bootstraps[fn] = p
		// The Makefile's build for the host (Lambda's provided.al2023 runs the same binary on its
		// own architecture) with its tag, which decides what the binary does — but with the cgo
		// setting and -trimpath of this test binary (as internal/testkit/localcloud builds for
		// the demo), so that it reuses the packages `go vet` and `go test` just put in the build
		// cache: -trimpath and a different CGO_ENABLED change every package's build action. On a
		// cold cache the two bootstraps took 50 s to build with -trimpath after `go vet`, 3 s
		// without. Neither changes what the functions do on loopback; tools/binsize and
		// tools/lambdarun measure the Makefile's exact binaries.
		args := []string{"build", "-tags", "lambda.norpc", "-o", p, "./functions/" + fn}
		if trimpath {
			args = slices.Insert(args, 1, "-trimpath")
		}
		jobs = append(jobs, args)
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, args := range jobs {
		wg.Go(func() {
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
