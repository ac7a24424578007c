// Package metrics writes CloudWatch Embedded Metric Format (EMF) records: one JSON line on the
// function's output that CloudWatch Logs turns into metrics, with no API call, no extra IAM
// permission and no latency. The template's alarms watch these metrics.
//
// Every record carries the Region the function runs in as a property (RegionProperty), not a
// dimension: CloudWatch metrics are regional already, and a new dimension would be a new metric
// the template's alarms do not watch. The property is what tells records apart when the logs of
// several Regions are queried together (Logs Insights across log groups, a central log account).
package metrics

import (
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric this project emits.
const Namespace = "PTCCredentials"

// Metric names. Dimensions are [Upstream]; PullsRemaining also has [Upstream, Secret]
// (EmitPerSecret); ReplicationFailed has none and [Upstream, ReplicaRegion] (EmitReplica).
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
	// ReplicationFailed is 1 when a replica Region of a managed secret reports replication
	// Failed and 0 while it is InSync or InProgress, one record per replica Region each time the
	// rotator reads the primary (EmitReplica). Alarm on its Maximum: the steps of one rotation
	// repeat the same observation.
	ReplicationFailed = "ReplicationFailed"
)

// SecretDimension is the dimension EmitPerSecret adds: the managed secret's name.
const SecretDimension = "Secret"

// ReplicaRegionDimension is the dimension EmitReplica adds: the replica's Region.
const ReplicaRegionDimension = "ReplicaRegion"

// RegionProperty is the member every record carries: the Region the function runs in.
const RegionProperty = "Region"

// Emitter writes EMF records to W. A nil *Emitter discards everything.
type Emitter struct {
	mu  sync.Mutex
	W   io.Writer
	Now func() time.Time
	// Region is the RegionProperty of every record; empty means AWS_REGION, which Lambda sets
	// in every function's environment.
	Region string
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
	e.emit(name, value, unit, [][]string{{"Upstream"}}, map[string]string{"Upstream": upstream}, props)
}

// EmitPerSecret is Emit with two dimension sets, [Upstream] (what the template's alarms watch)
// and [Upstream, Secret], so a dashboard can tell the secrets of one upstream apart.
func (e *Emitter) EmitPerSecret(name string, value float64, unit Unit, upstream, secret string, props map[string]any) {
	dims := [][]string{{"Upstream"}}
	members := map[string]string{"Upstream": upstream}
	if secret != "" {
		dims = append(dims, []string{"Upstream", SecretDimension})
		members[SecretDimension] = secret
	}
	e.emit(name, value, unit, dims, members, props)
}

// EmitReplica writes a metric about one replica Region of a secret with two dimension sets:
// none, so that one alarm covers every upstream and every replica Region (an alarm needs fixed
// dimension values, and the Regions are the deployer's to choose), and [Upstream,
// ReplicaRegion], so a dashboard shows which replica it is.
func (e *Emitter) EmitReplica(name string, value float64, unit Unit, upstream, replicaRegion string, props map[string]any) {
	e.emit(name, value, unit, [][]string{{}, {"Upstream", ReplicaRegionDimension}},
		map[string]string{"Upstream": upstream, ReplicaRegionDimension: replicaRegion}, props)
}

// region is the RegionProperty of the records.
func (e *Emitter) region() string {
	if e.Region != "" {
		return e.Region
	}
	return os.Getenv("AWS_REGION")
}

// emit writes one record: dims are the dimension sets, members the dimension values (top-level
// members, as EMF requires), props extra members that never replace those.
func (e *Emitter) emit(name string, value float64, unit Unit, dims [][]string, members map[string]string, props map[string]any) {
	if e == nil || e.W == nil {
		return
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
		name:           value,
		RegionProperty: e.region(),
	}
	for k, v := range members {
		rec[k] = v
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
