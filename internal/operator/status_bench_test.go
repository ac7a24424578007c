package operator_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// BenchmarkStatus200Rules is `ptc status` over 200 Docker Hub rules, each with its own managed
// secret, against localsm, the ECR emulator (whose validation logs in to the Docker Hub
// emulator) over loopback: per rule one DescribeSecret and one ValidatePullThroughCacheRule.
//
//	go test -run '^$' -bench Status200Rules -benchtime 5x ./internal/operator/
func BenchmarkStatus200Rules(b *testing.B) {
	srv := testenv.StartLocalSM()
	defer srv.Stop()
	w := newWorld(b, srv)
	for i := range 200 {
		p := fmt.Sprintf("bench-%03d", i)
		w.rule(p, w.secret(ptcsecret.Prefix+p, w.hubValue(), map[string]string{ptcsecret.TagUpstream: "docker-hub"}))
	}
	env := w.env()
	env.Err = io.Discard
	before := len(srv.Server.Calls())
	for b.Loop() {
		rep, err := operator.Status(w.ctx, env)
		if err != nil || len(rep.Rules) != 200 {
			b.Fatalf("status: %v, %d rules", err, len(rep.Rules))
		}
	}
	b.ReportMetric(float64(len(srv.Server.Calls())-before)/float64(b.N)/200, "SM-calls/rule")
}

// BenchmarkStatusReplicated is `ptc status` over 200 Docker Hub rules whose managed secrets are
// replicated to 0–3 Regions, each replica Region with its own rule pointing at its replica, in
// the localsm cluster and an ECR per Region (validation logging in to the Docker Hub emulator),
// all over loopback. Per replica Region and rule: the replica's DescribeSecret and ECR's
// validation there (which reads the replica); each Region's rules are listed once per run.
//
//	go test -run '^$' -bench StatusReplicated -benchtime 5x ./internal/operator/
//
// latency=20ms puts 20 ms before every request the CLI sends (a round trip to a real Region's
// endpoint, roughly), which is what the replica checks' concurrency is for: on loopback the
// emulators' CPU is the bound, over a network the round trips are.
func BenchmarkStatusReplicated(b *testing.B) {
	for _, c := range []struct {
		n       int
		latency time.Duration
	}{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {0, 20 * time.Millisecond}, {3, 20 * time.Millisecond}} {
		name := fmt.Sprintf("replicas=%d", c.n)
		if c.latency > 0 {
			name += ",latency=" + c.latency.String()
		}
		n := c.n
		b.Run(name, func(b *testing.B) {
			rw := newRegionWorld(b, 0)
			regions := allRegions[1 : 1+n]
			for i := range 200 {
				rw.replicated(fmt.Sprintf("bench-%03d", i), regions, regions)
			}
			env := rw.envIn(home)
			env.Err = io.Discard
			if c.latency > 0 {
				hc := &http.Client{Transport: delayed{http.DefaultTransport, c.latency}}
				cfg := func(region string) aws.Config {
					x := testenv.AWSConfig()
					x.Region = region
					x.HTTPClient = hc
					return x
				}
				env.SMFor = func(r string) operator.SecretsManager {
					return secretsmanager.NewFromConfig(cfg(r), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(rw.cluster.URL()) })
				}
				env.ECRFor = func(r string) operator.ECR {
					return ecr.NewFromConfig(cfg(r), func(o *ecr.Options) { o.BaseEndpoint = aws.String(rw.ecrURL) })
				}
				env.SM, env.ECR = env.SMFor(home), env.ECRFor(home)
			}
			count := func() (sm, ecr int) {
				for _, r := range allRegions {
					sm += len(rw.cluster.Cluster.Region(r).Calls())
					ecr += len(rw.ecrs.Region(r).Calls())
				}
				return sm, ecr
			}
			sm0, ecr0 := count()
			for b.Loop() {
				rep, err := operator.Status(rw.ctx, env)
				if err != nil || len(rep.Rules) != 200 || rep.Unhealthy != 0 {
					b.Fatalf("status: %v, %d rules, %d unhealthy", err, len(rep.Rules), rep.Unhealthy)
				}
			}
			sm1, ecr1 := count()
			b.ReportMetric(float64(sm1-sm0)/float64(b.N)/200, "SM-calls/rule")
			b.ReportMetric(float64(ecr1-ecr0)/float64(b.N)/200, "ECR-calls/rule")
		})
	}
}

// delayed is a transport that waits before each request: a stand-in for network latency.
type delayed struct {
	rt http.RoundTripper
	d  time.Duration
}

func (t delayed) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(t.d)
	return t.rt.RoundTrip(r)
}
