package rotation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// sourceReads answers GetSecretValue for a source secret and counts the reads.
type sourceReads struct {
	SecretsManager
	n int
}

func (s *sourceReads) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.n++
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(`{"allowedSecrets":["ecr-pullthroughcache/"]}`)}, nil
}

type nopUpstream struct{ upstream.Upstream }

// TestUpstreamCacheHoldsOnlyLiveEntries: every rotation has its own version id and so its own
// cache entry, which nobody reads after it expires. A warm environment that serves rotation
// after rotation must not keep them all: the map holds at most the entries still alive.
func TestUpstreamCacheHoldsOnlyLiveEntries(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sm := &sourceReads{}
	r := &Rotator{
		SM: sm,
		Providers: map[string]upstream.Provider{"docker-hub": {Registry: "docker-hub", New: func([]byte, upstream.Options) (upstream.Upstream, error) {
			return nopUpstream{}, nil
		}}},
		Now:       func() time.Time { return now },
		SourceTTL: time.Minute,
	}
	step := func(version int) {
		t.Helper()
		st := &stepState{name: "ecr-pullthroughcache/hub", upstream: "docker-hub", source: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:src-AbCdEf",
			ev: Event{ClientRequestToken: fmt.Sprintf("%032d", version)}}
		if _, err := r.upstreamFor(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	// A rotation every 30 s with a 1-minute TTL: at any moment only the entries made in the last
	// minute are alive, that is this one and the one before.
	for v := 1; v <= 50; v++ {
		step(v)
		if n := len(r.upstreams); n > 2 {
			t.Fatalf("after %d rotations the cache holds %d entries; only 2 can be alive", v, n)
		}
		now = now.Add(30 * time.Second)
	}
	// Pruning keeps what is alive: the last rotation's entry is still reused.
	now = now.Add(-30*time.Second + 10*time.Second)
	reads := sm.n
	step(50)
	if sm.n != reads {
		t.Errorf("a live entry was not reused: %d more source reads", sm.n-reads)
	}
}
