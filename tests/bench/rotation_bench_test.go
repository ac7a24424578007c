package bench

import (
	"context"
	"fmt"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

var (
	moto  *testenv.Moto
	local *testenv.LocalSM
)

func TestMain(m *testing.M) {
	var err error
	if moto, err = testenv.StartMoto(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	local = testenv.StartLocalSM()
	code := m.Run()
	moto.Stop()
	local.Stop()
	os.Exit(code)
}

// backends are the Secrets Managers the rotation benchmarks run against: moto first, then
// localsm (sm=local; until localsm replaced it, the in-process benchkit.FakeSM was sm=fake).
func backends() []benchkit.Backend {
	return []benchkit.Backend{benchkit.NewMotoBackend(moto), benchkit.NewLocalBackend(local)}
}

// BenchmarkRotation runs one full four-step rotation per op, for every Secrets Manager
// (sm=moto, sm=local), registry and environment reuse (env=warm: one rotator for the four steps;
// env=cold: a fresh rotator, SDK client and HTTP connections per step). Only the four steps
// are timed; staging the pending version (Secrets Manager's RotateSecret) is not. Every op
// rotates the same secret, so from the third on each one revokes the token two generations old
// (the steady state). Besides ns/op, B/op and allocs/op (which include the in-process
// emulators' server side), it reports:
//
//	cpu-ns/op       user+system CPU of this process (not moto's)
//	sm-calls/op     Secrets Manager calls the rotator made (benchkit.CountingSM)
//	up-calls/op     upstream requests, of which up-api/op went to the token API and
//	up-reg/op       to the registry login handshake
func BenchmarkRotation(b *testing.B) {
	// Warm and cold of one registry run back to back, so a drift in the machine's load (or
	// moto's speed) over the run does not pass for a difference between them.
	for _, be := range backends() {
		for _, name := range benchkit.Registries {
			for _, warm := range []bool{true, false} {
				env := map[bool]string{true: "warm", false: "cold"}[warm]
				b.Run(fmt.Sprintf("sm=%s/registry=%s/env=%s", be.Name(), name, env), func(b *testing.B) {
					benchRotation(b, be, name, warm)
				})
			}
		}
	}
}

func benchRotation(b *testing.B, be benchkit.Backend, registry string, warm bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	reg, err := benchkit.NewRegistry(registry, benchkit.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	m, err := benchkit.Setup(ctx, be, reg, 0, "")
	if err != nil {
		b.Fatal(err)
	}
	counts := &benchkit.Counts{}
	newEnv := func() *rotation.Rotator {
		return benchkit.NewRotator(benchkit.CountingSM{Inner: be.SM(), Counts: counts}, reg.Standins())
	}
	// Two rotations first: from then on every rotation has a token two generations old to
	// revoke, as in production.
	for range 2 {
		token := benchkit.NewID()
		if err := be.Begin(ctx, m.ARN, token); err != nil {
			b.Fatal(err)
		}
		if err := benchkit.RunSteps(ctx, m.ARN, token, warm, newEnv); err != nil {
			b.Fatal(err)
		}
	}
	counts.Reset()
	reg.Meter.Reset()
	var sw benchkit.Stopwatch
	var token string
	// moto's own CPU, when moto is the Secrets Manager: it shows where the wall time goes.
	var motoPIDs []int
	var motoCPU time.Duration
	if sb, ok := be.(*benchkit.ServerBackend); ok && sb.Moto() != nil {
		motoPIDs = benchkit.MotoPIDs(sb.Moto().Endpoint)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		token = benchkit.NewID()
		if err := be.Begin(ctx, m.ARN, token); err != nil {
			b.Fatal(err)
		}
		m0 := benchkit.SumProcCPU(motoPIDs)
		b.StartTimer()
		sw.Start()
		err := benchkit.RunSteps(ctx, m.ARN, token, warm, newEnv)
		sw.Stop()
		b.StopTimer()
		motoCPU += benchkit.SumProcCPU(motoPIDs) - m0
		if err != nil {
			b.Fatal(err)
		}
	}
	if cur := currentVersion(ctx, b, be, m.ARN); cur != token {
		b.Fatalf("AWSCURRENT is %s after the last rotation, want %s", cur, token)
	}
	n := float64(b.N)
	up := reg.Meter.Snapshot()
	b.ReportMetric(float64(sw.CPU.Nanoseconds())/n, "cpu-ns/op")
	if motoPIDs != nil {
		b.ReportMetric(float64(motoCPU.Nanoseconds())/n, "moto-cpu-ns/op")
	}
	b.ReportMetric(float64(counts.Total())/n, "sm-calls/op")
	b.ReportMetric(float64(up[benchkit.KeyAPI]+up[benchkit.KeyRegistry])/n, "up-calls/op")
	b.ReportMetric(float64(up[benchkit.KeyAPI])/n, "up-api/op")
	b.ReportMetric(float64(up[benchkit.KeyRegistry])/n, "up-reg/op")
	b.Logf("per rotation: SM %s | upstream api=%.2f registry=%.2f (b.N=%d)", perOp(counts, b.N), float64(up[benchkit.KeyAPI])/n, float64(up[benchkit.KeyRegistry])/n, b.N)
}

// perOp renders the call counts divided by n.
func perOp(c *benchkit.Counts, n int) string {
	s := c.Snapshot()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		parts = append(parts, fmt.Sprintf("%s=%.2f", k, float64(s[k])/float64(n)))
	}
	return strings.Join(parts, " ")
}

func currentVersion(ctx context.Context, b *testing.B, be benchkit.Backend, arn string) string {
	b.Helper()
	id, err := benchkit.CurrentVersion(ctx, be, arn)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// BenchmarkMotoCall is the latency of single Secrets Manager calls to moto_server over a real
// SDK client on loopback: what each of a rotation's calls costs before the rotator does
// anything. versions=N is a secret that has been rotated N times (moto keeps every version).
func BenchmarkMotoCall(b *testing.B) {
	ctx := context.Background()
	be := benchkit.NewMotoBackend(moto)
	for _, versions := range []int{1, 100} {
		arn, err := be.CreateSecret(ctx, "ptc-bench/moto-call-"+benchkit.NewID()[:8], "", `{"username":"u","accessToken":"t"}`, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range versions - 1 {
			if _, err := be.Admin().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(benchkit.NewID())}); err != nil {
				b.Fatal(err)
			}
		}
		sm := be.SM()
		b.Run(fmt.Sprintf("op=DescribeSecret/versions=%d", versions), func(b *testing.B) {
			for b.Loop() {
				if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("op=GetSecretValue/versions=%d", versions), func(b *testing.B) {
			for b.Loop() {
				if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
