package operator_test

import (
	"fmt"
	"io"
	"testing"

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
func BenchmarkStatusReplicated(b *testing.B) {
	for _, n := range []int{0, 1, 2, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			rw := newRegionWorld(b, 0)
			regions := allRegions[1 : 1+n]
			for i := range 200 {
				rw.replicated(fmt.Sprintf("bench-%03d", i), regions, regions)
			}
			env := rw.envIn(home)
			env.Err = io.Discard
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
