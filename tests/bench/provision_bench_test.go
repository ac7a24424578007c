package bench

import (
	"context"
	"fmt"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// provEnv is the custom resource's world: moto (with RotatingSecretsManager to play Secrets
// Manager's rotation invoke), the ECR pull-through cache emulator, and the Docker Hub emulator.
type provEnv struct {
	prov      *provision.Provisioner
	hub       *benchkit.Registry
	smCounts  *benchkit.Counts // the provisioner's Secrets Manager calls
	ecrCounts *benchkit.Counts // the provisioner's ECR calls
	rotCounts *benchkit.Counts // the rotator's, in the testSecret RotateSecret triggers
	sourceARN string
	stackID   string
	// during is told when the rotation invoke starts (true) and ends (false), so the
	// benchmark can leave it out: Secrets Manager runs it asynchronously, after RotateSecret
	// has answered.
	during    func(bool)
	invokeErr error
}

func newProvEnv(b *testing.B) *provEnv {
	b.Helper()
	ctx := context.Background()
	e := &provEnv{smCounts: &benchkit.Counts{}, ecrCounts: &benchkit.Counts{}, rotCounts: &benchkit.Counts{}, during: func(bool) {}}
	hub, err := benchkit.NewRegistry(ptcsecret.UpstreamDockerHub, benchkit.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.Close)
	e.hub = hub
	be := benchkit.NewMotoBackend(moto)
	sm := be.Admin()
	if e.sourceARN, err = be.CreateSecret(ctx, "ptc-source/prov-"+benchkit.NewID()[:8], "", hub.Source(0), nil); err != nil {
		b.Fatal(err)
	}
	rsm := &testenv.RotatingSecretsManager{Client: sm, Invoke: func(ctx context.Context, step, secretID, token string) error {
		e.during(true)
		defer e.during(false)
		// A fresh environment: the rotator has not seen this secret's source before.
		rot := benchkit.NewRotator(benchkit.CountingSM{Inner: be.SM(), Counts: e.rotCounts}, hub.Standins())
		err := rot.Handle(ctx, rotation.Event{Step: rotation.Step(step), SecretID: secretID, ClientRequestToken: token})
		if err != nil {
			e.invokeErr = err
		}
		return err
	}}
	ecrSrv := ecremu.New(ecremu.Options{
		SecretsManager: sm,
		Verify: func(ctx context.Context, _, url string, cred ptcsecret.Value) error {
			// Tagged so the meter counts ECR's own login check apart from the provisioner's calls.
			return registryauth.Check(ctx, benchkit.TagCaller("ecr"), registryauth.Target{Registry: url, Repository: "library/alpine"},
				registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
		},
	})
	srv := httptest.NewServer(ecrSrv)
	b.Cleanup(srv.Close)
	ecrClient := ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	e.prov = &provision.Provisioner{
		SM:                benchkit.CountingProvisionSM{Inner: rsm, Counts: e.smCounts},
		ECR:               benchkit.CountingECR{Inner: ecrClient, Counts: e.ecrCounts},
		Providers:         providers.All(),
		Standins:          hub.Standins(),
		RotationLambdaARN: testenv.FakeRotationLambdaARN,
		RotatorRoleARN:    testenv.RotatorRoleARN, ProvisionerRoleARN: testenv.ProvisionerRoleARN, OwnerKey: provision.StaticOwnerKey([]byte(testenv.OwnerKey)),
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics: &metrics.Emitter{W: io.Discard},
	}
	e.stackID = "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-bench/" + benchkit.NewID()
	return e
}

func (e *provEnv) props(prefix string) map[string]any {
	return map[string]any{
		"ServiceToken":         "arn:aws:lambda:us-east-1:123456789012:function:provisioner",
		"EcrRepositoryPrefix":  prefix,
		"UpstreamRegistry":     ptcsecret.UpstreamDockerHub,
		"UpstreamRegistryUrl":  e.hub.URL,
		"SourceSecretArn":      e.sourceARN,
		"RotationSchedule":     "rate(30 days)",
		"RecoveryWindowInDays": "0",
	}
}

func (e *provEnv) do(ctx context.Context, typ, physID, prefix string) (provision.Result, error) {
	res, err := e.prov.Handle(ctx, provision.Request{Type: typ, StackID: e.stackID, LogicalID: "Cache", PhysicalID: physID, Properties: e.props(prefix)})
	if err == nil && e.invokeErr != nil {
		err = fmt.Errorf("the testSecret RotateSecret ran failed: %w", e.invokeErr)
	}
	return res, err
}

// BenchmarkProvision measures the custom resource's Create (secret with its first token, rule,
// validation, rotation on) and Delete (rule, every token, secret) against moto, the ECR emulator
// and the Docker Hub emulator. The testSecret that RotateSecret(RotateImmediately=false) makes
// Secrets Manager run is left out of the time (Secrets Manager runs it after answering) and its
// calls are reported apart. Metrics besides ns/op, B/op, allocs/op (which include the in-process
// emulators):
//
//	sm-calls/op, ecr-calls/op   the provisioner's own AWS calls (decorators)
//	up-calls/op                 Docker Hub requests the provisioner made
//	ecr-up/op                   Docker Hub requests ECR's ValidatePullThroughCacheRule made
//	rot-sm/op, rot-up/op        the triggered testSecret's Secrets Manager and Docker Hub calls
func BenchmarkProvision(b *testing.B) {
	e := newProvEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, op := range []string{"Create", "Delete"} {
		b.Run("op="+op, func(b *testing.B) {
			var sw benchkit.Stopwatch
			sm, ecrc, rot := &benchkit.Counts{}, &benchkit.Counts{}, &benchkit.Counts{}
			var up, ecrUp, rotUp, upBefore int
			// run does one request; only the op measured is timed and counted.
			run := func(typ, physID, prefix string) provision.Result {
				timed := typ == op
				e.smCounts.Reset()
				e.ecrCounts.Reset()
				e.rotCounts.Reset()
				e.hub.Meter.Reset()
				e.invokeErr = nil
				e.during = func(start bool) {
					if !timed {
						return
					}
					if start {
						sw.Stop()
						b.StopTimer()
						upBefore = e.hub.Meter.Total()
						return
					}
					rotUp += e.hub.Meter.Total() - upBefore
					b.StartTimer()
					sw.Start()
				}
				if timed {
					b.StartTimer()
					sw.Start()
				}
				res, err := e.do(ctx, typ, physID, prefix)
				if timed {
					sw.Stop()
					b.StopTimer()
				}
				if err != nil {
					b.Fatalf("%s: %v", typ, err)
				}
				if timed {
					for k, v := range e.smCounts.Snapshot() {
						sm.Add(k, v)
					}
					for k, v := range e.ecrCounts.Snapshot() {
						ecrc.Add(k, v)
					}
					for k, v := range e.rotCounts.Snapshot() {
						rot.Add(k, v)
					}
					snap := e.hub.Meter.Snapshot()
					up += snap[benchkit.KeyAPI] + snap[benchkit.KeyRegistry]
					ecrUp += snap["by:ecr"]
				}
				return res
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.StopTimer()
			for i := range b.N {
				prefix := fmt.Sprintf("b%d-%s", i, benchkit.NewID()[:6])
				res := run("Create", "", prefix)
				run("Delete", res.PhysicalID, prefix)
			}
			b.StartTimer()
			n := float64(b.N)
			b.ReportMetric(float64(sw.CPU.Nanoseconds())/n, "cpu-ns/op")
			b.ReportMetric(float64(sm.Total())/n, "sm-calls/op")
			b.ReportMetric(float64(ecrc.Total())/n, "ecr-calls/op")
			b.ReportMetric(float64(up-ecrUp-rotUp)/n, "up-calls/op")
			b.ReportMetric(float64(ecrUp)/n, "ecr-up/op")
			b.ReportMetric(float64(rot.Total())/n, "rot-sm/op")
			b.ReportMetric(float64(rotUp)/n, "rot-up/op")
			b.Logf("per %s: SM %s | ECR %s | triggered testSecret: SM %s (b.N=%d)", op, perOp(sm, b.N), perOp(ecrc, b.N), perOp(rot, b.N), b.N)
		})
	}
}
