package localcloud

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// The functions, as directories of functions/ and of a prebuilt bootstrap directory.
const (
	FnRotator     = "rotator"
	FnProvisioner = "provisioner"
)

// riePackage is the Lambda Runtime Interface Emulator pinned in tools.mod.
const riePackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// binaries are the executables a Cloud runs.
type binaries struct {
	rie        string
	bootstraps map[string]string // function name -> bootstrap
}

// build returns the binaries: the prebuilt ones the options name, fresh builds under dir for the
// rest (in parallel; the go build cache makes repeats cheap).
func build(ctx context.Context, opts Options, dir string) (binaries, error) {
	out := binaries{bootstraps: map[string]string{}}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(opts.RepoRoot, p)
	}
	var jobs [][]string // go command arguments
	cgo, trimpath := HostBuildSettings()
	if opts.RIEBin != "" {
		out.rie = abs(opts.RIEBin)
		if _, err := os.Stat(out.rie); err != nil {
			return out, fmt.Errorf("Options.RIEBin: %w", err)
		}
	} else {
		out.rie = filepath.Join(dir, "aws-lambda-rie")
		jobs = append(jobs, []string{"build", "-modfile=" + filepath.Join(opts.RepoRoot, "tools.mod"), "-o", out.rie, riePackage})
	}
	for _, fn := range []string{FnRotator, FnProvisioner} {
		if opts.BootstrapDir != "" {
			p := abs(filepath.Join(opts.BootstrapDir, fn, "bootstrap"))
			if err := CheckHostBinary(p); err != nil {
				return out, fmt.Errorf("Options.BootstrapDir: %w", err)
			}
			out.bootstraps[fn] = p
			continue
		}
		p := filepath.Join(dir, fn, "bootstrap")
		out.bootstraps[fn] = p
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
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = opts.RepoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// HostBuildSettings returns the cgo setting and -trimpath of the running program. The binaries
// are built the same way so that they reuse the packages the go build cache already holds for it
// (the AWS SDK and the project's own): from a cold cache that halves the demo's build. The
// functions behave the same with or without cgo and -trimpath on loopback; the release flags
// themselves (CGO_ENABLED=0, -trimpath, -s -w) are what `make e2e` runs. Without build
// information, the release flags.
func HostBuildSettings() (cgo string, trimpath bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "0", true
	}
	cgo = "0"
	for _, s := range bi.Settings {
		switch s.Key {
		case "CGO_ENABLED":
			cgo = s.Value
		case "-trimpath":
			trimpath = s.Value == "true"
		}
	}
	return cgo, trimpath
}

// CheckHostBinary refuses a prebuilt bootstrap this machine cannot run (`make build` defaults to
// arm64), saying how to build the right one.
func CheckHostBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if want != 0 && f.Machine != want {
		return fmt.Errorf("%s is built for %s, this machine is %s: build it with `make build GOARCH=%s`", path, f.Machine, runtime.GOARCH, runtime.GOARCH)
	}
	return nil
}

// FindRepoRoot is testenv.FindRepoRoot, kept for the demo's callers.
func FindRepoRoot(dir string) (string, error) { return testenv.FindRepoRoot(dir) }
