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
