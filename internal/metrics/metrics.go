// Package metrics writes CloudWatch Embedded Metric Format (EMF) records: one JSON line on the
// function's output that CloudWatch Logs turns into metrics, with no API call, no extra IAM
// permission and no latency. The template's alarms watch these metrics.
package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric this project emits.
const Namespace = "PTCCredentials"

// Metric names. Dimensions are [Upstream]; PullsRemaining also has [Upstream, Secret] (EmitPerSecret).
const (
	RotationSucceeded  = "RotationSucceeded"
	RotationStepFailed = "RotationStepFailed"
	VerificationFailed = "VerificationFailed"
	RevocationFailed   = "RevocationFailed"
	TokensRevoked      = "TokensRevoked"
	TokenDaysToExpiry  = "TokenDaysToExpiry"
	ProvisionFailed    = "ProvisionFailed"
	// PullsRemaining is the pulls a credential has left in the registry's window (Docker Hub's
	// ratelimit-remaining), emitted only when the registry reports it.
	PullsRemaining = "PullsRemaining"
)

// SecretDimension is the dimension EmitPerSecret adds: the managed secret's name.
const SecretDimension = "Secret"

// Emitter writes EMF records to W. A nil *Emitter discards everything.
type Emitter struct {
	mu  sync.Mutex
	W   io.Writer
	Now func() time.Time
}

// Unit is a CloudWatch unit.
type Unit string

// Units used here.
const (
	Count Unit = "Count"
	None  Unit = "None"
)

// Emit writes one metric with the Upstream dimension and extra properties (which become
// searchable log fields; never pass a secret).
func (e *Emitter) Emit(name string, value float64, unit Unit, upstream string, props map[string]any) {
	e.emit(name, value, unit, upstream, "", props)
}

// EmitPerSecret is Emit with two dimension sets, [Upstream] (what the template's alarms watch)
// and [Upstream, Secret], so a dashboard can tell the secrets of one upstream apart.
func (e *Emitter) EmitPerSecret(name string, value float64, unit Unit, upstream, secret string, props map[string]any) {
	e.emit(name, value, unit, upstream, secret, props)
}

func (e *Emitter) emit(name string, value float64, unit Unit, upstream, secret string, props map[string]any) {
	if e == nil || e.W == nil {
		return
	}
	dims := [][]string{{"Upstream"}}
	if secret != "" {
		dims = append(dims, []string{"Upstream", SecretDimension})
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	rec := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  Namespace,
				"Dimensions": dims,
				"Metrics":    []map[string]any{{"Name": name, "Unit": unit}},
			}},
		},
		"Upstream": upstream,
		name:       value,
	}
	if secret != "" {
		rec[SecretDimension] = secret
	}
	for k, v := range props {
		if _, taken := rec[k]; !taken {
			rec[k] = v
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.W.Write(append(b, '\n'))
}
