// Command scale simulates a fleet: -secrets managed secrets spread evenly over the four
// registries, all due at once and rotated by a pool of -workers Lambda environments (each a warm
// rotator serving one rotation — four steps — at a time), against registry emulators whose token
// APIs allow -rate requests per second each and answer 429 + Retry-After beyond that. A second
// scenario makes -fail of all upstream requests answer 503, and re-runs a failed rotation from
// createSecret (same version id, as Secrets Manager retries) up to -retries more times.
//
// It prints a Markdown report: wall time against the lower bound the rate limits impose, calls,
// 429s and retries, whole-rotation retries, peak memory, and checks that every rotation ended
// with AWSCURRENT on its new version and no more than two live tokens per secret.
//
// Run from the repository: go run ./tools/scale [-sm local|moto] [-rate 100]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

type config struct {
	secrets, workers, rate, retries int
	fail, lost                      float64
	seed                            uint64
	sm                              string
	stepTimeout                     time.Duration
	scenarios                       []string
}

func main() {
	var c config
	var scen string
	flag.IntVar(&c.secrets, "secrets", 1000, "managed secrets, spread evenly over the four registries")
	flag.IntVar(&c.workers, "workers", 50, "Lambda environments rotating at once (the function's concurrency)")
	flag.IntVar(&c.rate, "rate", 100, "token-API requests per second each registry accepts")
	flag.IntVar(&c.retries, "retries", 5, "whole-rotation retries after a failed rotation (as Secrets Manager does)")
	flag.Float64Var(&c.fail, "fail", 0.05, "fraction of upstream requests answered 503 in the faults scenario")
	flag.Float64Var(&c.lost, "lost", 0.5, "fraction of those 503s given after the emulator did the work (response lost)")
	flag.Uint64Var(&c.seed, "seed", 1, "PRNG seed for fault injection and the job order")
	flag.StringVar(&c.sm, "sm", "local", "Secrets Manager: local (localsm over loopback) or moto (moto_server)")
	flag.DurationVar(&c.stepTimeout, "step-timeout", 300*time.Second, "deadline of one step (the template's Lambda Timeout)")
	flag.StringVar(&scen, "scenarios", "clean,faults", "comma-separated: clean, faults")
	flag.Parse()
	c.scenarios = strings.Split(scen, ",")
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	fmt.Printf("# Scale simulation: %d secrets, %d workers, token APIs limited to %d req/s per registry, Secrets Manager = %s\n\n",
		c.secrets, c.workers, c.rate, c.sm)
	fmt.Printf("%s/%s, %d CPUs, %s. Command: `go run ./tools/scale %s`\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), strings.Join(os.Args[1:], " "))
	var moto *testenv.Moto
	if c.sm == "moto" {
		var err error
		if moto, err = testenv.StartMoto(); err != nil {
			return err
		}
		defer moto.Stop()
	}
	for _, s := range c.scenarios {
		var be benchkit.Backend
		switch c.sm {
		case "local":
			// A fresh server per scenario, as moto is reset per scenario.
			local := testenv.StartLocalSM()
			defer local.Stop()
			be = benchkit.NewLocalBackend(local)
		case "moto":
			if err := moto.Reset(); err != nil {
				return err
			}
			be = benchkit.NewMotoBackend(moto)
		default:
			return fmt.Errorf("-sm %q: want local or moto", c.sm)
		}
		fail := 0.0
		if s == "faults" {
			fail = c.fail
		} else if s != "clean" {
			return fmt.Errorf("unknown scenario %q", s)
		}
		if err := scenario(c, s, be, fail); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

type job struct {
	m       *benchkit.Managed
	token   string
	attempt int // 0 for the first run
}

type regStats struct {
	rotations, succeeded, failed int
	wholeRetries                 int // rotations that needed at least one whole-rotation retry
}

func scenario(c config, name string, be benchkit.Backend, fail float64) error {
	ctx := context.Background()
	regs := map[string]*benchkit.Registry{}
	for i, n := range benchkit.Registries {
		r, err := benchkit.NewRegistry(n, benchkit.RegistryOptions{RateLimit: c.rate, FaultFraction: fail, LostFraction: c.lost, Seed: c.seed + uint64(i)})
		if err != nil {
			return err
		}
		defer r.Close()
		r.Limits(false)
		regs[n] = r
	}
	var emus []*benchkit.Registry
	for _, r := range regs {
		emus = append(emus, r)
	}
	standins := benchkit.Standins(emus...) // the emulators stand in for every upstream's pinned hosts

	// Setup, unlimited: what the provisioner created over time.
	setupStart := time.Now()
	var all []*benchkit.Managed
	per := c.secrets / len(benchkit.Registries)
	for _, n := range benchkit.Registries {
		r := regs[n]
		shared := ""
		for i := range per {
			m, err := benchkit.Setup(ctx, be, r, i, shared)
			if err != nil {
				return fmt.Errorf("setting up %s secret %d: %w", n, i, err)
			}
			if r.SharedSource {
				shared = m.Source
			}
			all = append(all, m)
		}
	}
	setup := time.Since(setupStart)
	rng := rand.New(rand.NewPCG(c.seed, 42))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, r := range regs {
		r.Meter.Reset()
		r.Limits(true)
	}

	// Memory sampling.
	var peakHeap, peakSys atomic.Uint64
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if ms.Sys > peakSys.Load() {
				peakSys.Store(ms.Sys)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	})
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	smCounts := &benchkit.Counts{}
	jobs := make(chan job, len(all))
	var pending sync.WaitGroup
	var mu sync.Mutex
	stats := map[string]*regStats{}
	for _, n := range benchkit.Registries {
		stats[n] = &regStats{}
	}
	errKinds := map[string]int{}
	final := map[string]string{} // arn -> token, for the checks
	attempts := map[int]int{}    // attempts a successful rotation took -> count

	start := time.Now()
	for _, m := range all {
		pending.Add(1)
		jobs <- job{m: m, token: benchkit.NewID()}
	}
	go func() {
		pending.Wait()
		close(jobs)
	}()
	var runs atomic.Int64 // rotation attempts, first runs and retries
	var workers sync.WaitGroup
	for range c.workers {
		workers.Go(func() {
			// One Lambda environment: its rotator (SDK client, HTTP connections, caches)
			// serves one rotation at a time, for as long as the run lasts.
			r := benchkit.NewRotator(benchkit.CountingSM{Inner: be.SM(), Counts: smCounts}, standins)
			for j := range jobs {
				runs.Add(1)
				err := rotateOnce(ctx, be, r, j, c.stepTimeout)
				mu.Lock()
				st := stats[j.m.Registry.Name]
				if j.attempt == 0 {
					st.rotations++
				}
				switch {
				case err == nil:
					st.succeeded++
					if j.attempt > 0 {
						st.wholeRetries++
					}
					attempts[j.attempt+1]++
					final[j.m.ARN] = j.token
				case j.attempt < c.retries:
					errKinds[kind(err)]++
				default:
					errKinds[kind(err)]++
					st.failed++
					if j.attempt > 0 {
						st.wholeRetries++
					}
				}
				mu.Unlock()
				if err != nil && j.attempt < c.retries {
					j.attempt++
					jobs <- j // Secrets Manager retries the whole rotation, same version id
					continue
				}
				pending.Done()
			}
		})
	}
	workers.Wait()
	wall := time.Since(start)
	close(stopSampling)
	samplerDone.Wait()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)

	for _, r := range regs {
		r.Limits(false)
	}
	// Checks: AWSCURRENT moved for every success; at most two live tokens per secret.
	var wrongCurrent, extraTokens int
	live := liveTokens(regs)
	for _, m := range all {
		if tok, ok := final[m.ARN]; ok {
			cur, err := benchkit.CurrentVersion(ctx, be, m.ARN)
			if err != nil {
				return err
			}
			if cur != tok {
				wrongCurrent++
			}
		}
		if n, counted := live[m.Registry.Name]; counted && n[ptcsecret.LabelPrefix(m.Key)] > 2 {
			extraTokens += n[ptcsecret.LabelPrefix(m.Key)] - 2
		}
	}

	fmt.Printf("\n## Scenario %q: %.0f %% of upstream requests fail with 503 (%.0f %% of those after the work was done)\n\n", name, 100*fail, 100*c.lost*boolf(fail > 0))
	fmt.Printf("Setup (not timed): %d secrets in %.1f s. Rotation of all: **%.1f s** wall.\n\n", len(all), setup.Seconds(), wall.Seconds())
	fmt.Println("| registry | rotations | succeeded | needed whole-rotation retry | failed for good | token-API calls accepted | per rotation | 429s (each one waited Retry-After) | 503s injected | registry-login calls | lower bound at the rate limit |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var bound float64
	var tot regStats
	for _, n := range benchkit.Registries {
		st, snap := stats[n], regs[n].Meter.Snapshot()
		lb := float64(snap[benchkit.KeyAPIAccepted]) / float64(c.rate)
		bound = max(bound, lb)
		tot.rotations += st.rotations
		tot.succeeded += st.succeeded
		tot.failed += st.failed
		tot.wholeRetries += st.wholeRetries
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %.2f | %d | %d | %d | %.1f s |\n", n, st.rotations, st.succeeded, st.wholeRetries, st.failed,
			snap[benchkit.KeyAPIAccepted], float64(snap[benchkit.KeyAPIAccepted])/float64(max(st.rotations, 1)), snap[benchkit.KeyRateLimited],
			snap[benchkit.KeyInjected5xx], snap[benchkit.KeyRegistry], lb)
	}
	fmt.Printf("| **all** | %d | %d | %d | %d | | | | | | **%.1f s** (registries run in parallel: the largest) |\n\n", tot.rotations, tot.succeeded, tot.wholeRetries, tot.failed, bound)
	fmt.Printf("- Wall time / lower bound: %.2f.\n", wall.Seconds()/max(bound, 1e-9))
	fmt.Printf("- Rotation attempts: %d for %d rotations. Secrets Manager calls: %d (%.2f per attempt; %s).\n",
		runs.Load(), tot.rotations, smCounts.Total(), float64(smCounts.Total())/float64(max(runs.Load(), 1)), smCounts.String())
	var keys []int
	for k := range attempts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d attempt(s): %d", k, attempts[k]))
	}
	fmt.Printf("- Successful rotations by attempts: %s.\n", strings.Join(parts, ", "))
	fmt.Printf("- Checks: %d successful rotations with AWSCURRENT elsewhere; %d live tokens beyond current+previous (left for the next rotation to revoke).\n", wrongCurrent, extraTokens)
	fmt.Printf("- Memory of the whole simulation (emulators, %s Secrets Manager and %d rotators in one process): peak RSS %.1f MiB; Go heap in use peak %.1f MiB; runtime Sys peak %.1f MiB; %.1f MiB allocated during the run (%.1f KiB per rotation attempt), %d GCs.\n",
		c.sm, c.workers, float64(benchkit.MaxRSS())/(1<<20), float64(peakHeap.Load())/(1<<20), float64(peakSys.Load())/(1<<20),
		float64(ms1.TotalAlloc-ms0.TotalAlloc)/(1<<20), float64(ms1.TotalAlloc-ms0.TotalAlloc)/1024/float64(max(runs.Load(), 1)), ms1.NumGC-ms0.NumGC)
	if len(errKinds) > 0 {
		fmt.Println("- Step failures that triggered a whole-rotation retry (or ended one), by kind:")
		type kv struct {
			k string
			n int
		}
		var kvs []kv
		for k, n := range errKinds {
			kvs = append(kvs, kv{k, n})
		}
		slices.SortFunc(kvs, func(a, b kv) int { return b.n - a.n })
		for _, e := range kvs {
			fmt.Printf("  - %d × %s\n", e.n, e.k)
		}
	}
	if tot.failed > 0 || wrongCurrent > 0 {
		fmt.Printf("\n**%d rotations did not succeed after %d whole-rotation retries.**\n", tot.failed, c.retries)
	}
	return nil
}

// rotateOnce stages the pending version (a retry finds it already staged) and runs the four
// steps, each with its own Lambda deadline.
func rotateOnce(ctx context.Context, be benchkit.Backend, r *rotation.Rotator, j job, stepTimeout time.Duration) error {
	if err := be.Begin(ctx, j.m.ARN, j.token); err != nil && j.attempt == 0 {
		return fmt.Errorf("RotateSecret: %w", err)
	}
	for _, s := range benchkit.Steps {
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := r.Handle(sctx, rotation.Event{Step: s, SecretID: j.m.ARN, ClientRequestToken: j.token, RotationToken: "rotation-token-" + j.token})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// liveTokens counts, per registry that labels its tokens, the live tokens by label prefix
// (ptcsecret.LabelPrefix of the secret's key).
func liveTokens(regs map[string]*benchkit.Registry) map[string]map[string]int {
	out := map[string]map[string]int{}
	prefix := func(label string) string { // "ptc-" + 12 hex + "-"
		if len(label) < 17 {
			return ""
		}
		return label[:17]
	}
	for _, r := range regs {
		if !r.Emulator.Can.Labels {
			continue
		}
		m := map[string]int{}
		for _, c := range r.Emulator.Held("") {
			m[prefix(c.Name)]++
		}
		out[r.Name] = m
	}
	return out
}

var idRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// kind shortens an error to its kind: ids and numbers removed, first 160 characters.
func kind(err error) string {
	s := idRE.ReplaceAllString(err.Error(), "<id>")
	s = regexp.MustCompile(`ecr-pullthroughcache/[a-z-]+-\d+-[0-9a-f]+`).ReplaceAllString(s, "<secret>")
	s = regexp.MustCompile(`arn:aws:secretsmanager:[^ ]+`).ReplaceAllString(s, "<arn>")
	s = regexp.MustCompile(`ptc-pull(-\d+)?`).ReplaceAllString(s, "<token>")
	s = regexp.MustCompile(`\d+(\.\d+)?(ms|s)\b`).ReplaceAllString(s, "<t>")
	s = regexp.MustCompile(`after \d+ attempts`).ReplaceAllString(s, "after <n> attempts")
	s = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "<emulator>")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
