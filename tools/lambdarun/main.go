// Command lambdarun runs the real bootstrap binaries the way Lambda does — as a child process
// polling a Runtime API (benchkit.RuntimeAPI) — and prints, as Markdown tables:
//
//   - cold start: process start (just before fork/exec) → its first GET /invocation/next, i.e.
//     ready for the first event, over -runs starts of each function, with the peak RSS and CPU
//     of that init;
//   - a full four-step rotation per registry served by one fresh rotator process (a warm
//     environment, as Secrets Manager's four invocations usually share), against moto_server and
//     the registry emulators, with the process's peak RSS (getrusage of the child) and the wall
//     time of the four invocations;
//   - one process serving -warm-rotations rotations in a row, to show peak RSS does not grow.
//
// Run from the repository: go run ./tools/lambdarun [-runs 30]. The bootstraps are
// built for this machine with the Makefile's flags unless -bindir names prebuilt ones
// (<bindir>/<function>/bootstrap).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func main() {
	runs := flag.Int("runs", 30, "cold starts per function")
	rotations := flag.Int("rotations", 5, "full rotations per registry, each in a fresh process")
	warmRotations := flag.Int("warm-rotations", 20, "rotations served by one process, in a row (docker-hub)")
	bindir := flag.String("bindir", "", "directory holding <function>/bootstrap built for this machine (default: build them)")
	flag.Parse()
	if err := run(*runs, *rotations, *warmRotations, *bindir); err != nil {
		fmt.Fprintln(os.Stderr, "lambdarun:", err)
		os.Exit(1)
	}
}

var functions = []string{"rotator", "provisioner"}

func run(runs, rotations, warmRotations int, bindir string) error {
	tmp, err := os.MkdirTemp("", "ptc-lambdarun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bins := map[string]string{}
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	for _, fn := range functions {
		if bindir != "" {
			bins[fn] = filepath.Join(bindir, fn, "bootstrap")
			continue
		}
		bins[fn] = filepath.Join(tmp, fn, "bootstrap")
		pkg := "./functions/" + fn
		if err := benchkit.Build(root, pkg, runtime.GOOS, runtime.GOARCH, bins[fn], benchkit.BuildFlags); err != nil {
			return err
		}
	}
	api := benchkit.NewRuntimeAPI()
	defer api.Close()
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}

	fmt.Printf("## Cold start (%s/%s, %d CPUs, %s)\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Println("| function | start → ready, ms | peak RSS at ready, MiB | CPU of init, ms |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, fn := range functions {
		env := append(benchkit.LambdaEnv(api, home), "ROTATION_LAMBDA_ARN=arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator")
		var ready, cpu []time.Duration
		var rss []float64
		for i := range runs + 1 {
			api.Reset()
			p, err := benchkit.Start(bins[fn], env)
			if err != nil {
				return err
			}
			d, err := p.WaitReady(api, 10*time.Second)
			m, c := p.Kill()
			if err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			if i == 0 {
				continue // the first start pays for the page cache; Lambda's are all cold alike
			}
			ready, cpu, rss = append(ready, d), append(cpu, c), append(rss, float64(m)/(1<<20))
		}
		fmt.Printf("| %s | %s | %s | %s |\n", fn, benchkit.Summarize(benchkit.Millis(ready)).Format("%.2f"),
			benchkit.Summarize(rss).Format("%.1f"), benchkit.Summarize(benchkit.Millis(cpu)).Format("%.0f"))
	}

	moto, err := testenv.StartMoto()
	if err != nil {
		return err
	}
	defer moto.Stop()
	be := benchkit.NewMotoBackend(moto)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := append(benchkit.LambdaEnv(api, home), "AWS_ENDPOINT_URL_SECRETS_MANAGER="+moto.Endpoint)

	fmt.Printf("\n## Full rotation in the real rotator process (one fresh process per rotation; Secrets Manager = moto_server)\n\n")
	fmt.Println("| registry | four invocations, wall ms | rotator peak RSS, MiB | rotator CPU (init + 4 steps), ms |")
	fmt.Println("| --- | --- | --- | --- |")
	type row struct{ fn, registry string }
	var rows []row
	for _, name := range benchkit.Registries {
		rows = append(rows, row{"rotator", name})
	}
	for _, rw := range rows {
		name := rw.registry
		reg, err := benchkit.NewRegistry(name, benchkit.RegistryOptions{})
		if err != nil {
			return err
		}
		m, err := benchkit.Setup(ctx, be, reg, 0, "")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var walls, cpus []time.Duration
		var rss []float64
		for range rotations {
			api.Reset()
			p, err := benchkit.Start(bins[rw.fn], env)
			if err != nil {
				return err
			}
			if _, err := p.WaitReady(api, 10*time.Second); err != nil {
				p.Kill()
				return err
			}
			wall, err := rotate(ctx, api, be, m)
			mr, c := p.Kill()
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", name, err, p.Output.String())
			}
			walls, cpus, rss = append(walls, wall), append(cpus, c), append(rss, float64(mr)/(1<<20))
		}
		reg.Close()
		label := name
		if rw.fn != "rotator" {
			label += " (" + rw.fn + ")"
		}
		fmt.Printf("| %s | %s | %s | %s |\n", label, benchkit.Summarize(benchkit.Millis(walls)).Format("%.1f"),
			benchkit.Summarize(rss).Format("%.1f"), benchkit.Summarize(benchkit.Millis(cpus)).Format("%.0f"))
	}

	fmt.Printf("\n## One rotator process serving %d docker-hub rotations in a row\n\n", warmRotations)
	reg, err := benchkit.NewRegistry("docker-hub", benchkit.RegistryOptions{})
	if err != nil {
		return err
	}
	defer reg.Close()
	m, err := benchkit.Setup(ctx, be, reg, 0, "")
	if err != nil {
		return err
	}
	api.Reset()
	p, err := benchkit.Start(bins["rotator"], env)
	if err != nil {
		return err
	}
	if _, err := p.WaitReady(api, 10*time.Second); err != nil {
		p.Kill()
		return err
	}
	var walls []time.Duration
	for range warmRotations {
		wall, err := rotate(ctx, api, be, m)
		if err != nil {
			p.Kill()
			return fmt.Errorf("warm: %w\n%s", err, p.Output.String())
		}
		walls = append(walls, wall)
	}
	mr, c := p.Kill()
	fmt.Printf("- four invocations, wall ms: %s\n", benchkit.Summarize(benchkit.Millis(walls)).Format("%.1f"))
	fmt.Printf("- peak RSS after %d rotations: %.1f MiB; CPU: %.0f ms in all (%.1f ms per rotation)\n",
		warmRotations, float64(mr)/(1<<20), float64(c)/float64(time.Millisecond), float64(c)/float64(time.Millisecond)/float64(warmRotations))
	return nil
}

// rotate stages a pending version in moto as RotateSecret does, then sends the four step
// events to the process and returns the wall time from the first event to the last answer.
func rotate(ctx context.Context, api *benchkit.RuntimeAPI, be *benchkit.ServerBackend, m *benchkit.Managed) (time.Duration, error) {
	token := benchkit.NewID()
	if err := be.Begin(ctx, m.ARN, token); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, step := range benchkit.Steps {
		ev, _ := json.Marshal(map[string]string{
			"Step": string(step), "SecretId": m.ARN, "ClientRequestToken": token,
			"RotationToken": "rotation-token-" + token,
		})
		res, err := api.Invoke(ctx, ev)
		if err != nil {
			return 0, err
		}
		if res.Error {
			return 0, fmt.Errorf("%s failed: %s", step, res.Body)
		}
	}
	wall := time.Since(start)
	st, err := testenv.Stages(ctx, be.Admin(), m.ARN)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(st[token], "AWSCURRENT") {
		return 0, fmt.Errorf("AWSCURRENT did not move to %s: %v", token, st)
	}
	return wall, nil
}
