package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestOpNamesCarryTheRegion: the matrix names an AWS call by its operation, plus "@<region>"
// when the SigV4 scope is not the home Region's — so a single-Region scenario's table keeps
// its names, and a multi-Region one says which Region each call went to.
func TestOpNamesCarryTheRegion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	inj := NewInjector()
	inj.Counting(true)
	inj.Begin(1)
	ctx := context.Background()
	for _, r := range []string{homeRegion, "eu-west-1"} {
		_, _ = faultySMIn(inj, srv.URL, r).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("x")})
		_, _ = faultyECRIn(inj, srv.URL, r).DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	}
	var got []string
	for _, c := range inj.Calls() {
		got = append(got, c.Op)
	}
	want := []string{"sm:DescribeSecret", "ecr:DescribePullThroughCacheRules", "sm:DescribeSecret@eu-west-1", "ecr:DescribePullThroughCacheRules@eu-west-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("op names %q, want %q", got, want)
	}
	if op, region := regionOf(want[2]); op != "sm:DescribeSecret" || region != "eu-west-1" {
		t.Errorf("regionOf(%q) = %q, %q", want[2], op, region)
	}
}
