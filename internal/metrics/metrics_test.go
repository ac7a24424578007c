package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmitWritesOneEMFRecord(t *testing.T) {
	var buf bytes.Buffer
	e := &Emitter{W: &buf, Now: func() time.Time { return time.UnixMilli(1700000000123) }}
	e.Emit(TokenDaysToExpiry, 12.5, None, "github-container-registry", map[string]any{"secret": "ecr-pullthroughcache/ghcr", "Upstream": "overridden?"})
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	aws := rec["_aws"].(map[string]any)
	if aws["Timestamp"].(float64) != 1700000000123 {
		t.Errorf("timestamp %v", aws["Timestamp"])
	}
	cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if cw["Namespace"] != Namespace {
		t.Errorf("namespace %v", cw["Namespace"])
	}
	if dims := cw["Dimensions"].([]any)[0].([]any); len(dims) != 1 || dims[0] != "Upstream" {
		t.Errorf("dimensions %v", cw["Dimensions"])
	}
	m := cw["Metrics"].([]any)[0].(map[string]any)
	if m["Name"] != TokenDaysToExpiry || m["Unit"] != "None" {
		t.Errorf("metric %v", m)
	}
	// EMF reads the value and the dimension from top-level members; props never replace them.
	if rec[TokenDaysToExpiry] != 12.5 || rec["Upstream"] != "github-container-registry" || rec["secret"] != "ecr-pullthroughcache/ghcr" {
		t.Errorf("members %v", rec)
	}
}

func TestNilEmitterDiscards(t *testing.T) {
	var e *Emitter
	e.Emit(RotationSucceeded, 1, Count, "docker-hub", nil) // must not panic
	(&Emitter{}).Emit(RotationSucceeded, 1, Count, "docker-hub", nil)
}

// TestEmitPerSecret: two dimension sets, [Upstream] for the alarms and [Upstream, Secret], with
// the Secret member at top level as EMF requires.
func TestEmitPerSecret(t *testing.T) {
	var buf bytes.Buffer
	e := &Emitter{W: &buf}
	e.EmitPerSecret(PullsRemaining, 17, Count, "docker-hub", "ecr-pullthroughcache/docker-hub", map[string]any{"Secret": "overridden?", "pull_limit": 200})
	var rec struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Upstream, Secret string
		Value            float64 `json:"PullsRemaining"`
		Limit            float64 `json:"pull_limit"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	cw := rec.AWS.CloudWatchMetrics[0]
	if len(cw.Dimensions) != 2 || len(cw.Dimensions[0]) != 1 || cw.Dimensions[0][0] != "Upstream" ||
		len(cw.Dimensions[1]) != 2 || cw.Dimensions[1][0] != "Upstream" || cw.Dimensions[1][1] != SecretDimension {
		t.Errorf("dimensions %v", cw.Dimensions)
	}
	if cw.Metrics[0].Name != PullsRemaining || rec.Value != 17 || rec.Upstream != "docker-hub" || rec.Secret != "ecr-pullthroughcache/docker-hub" || rec.Limit != 200 {
		t.Errorf("record %+v", rec)
	}
}

// TestEveryRecordCarriesTheRegion: the Emitter's Region, else AWS_REGION (what Lambda sets), as
// a property beside the dimensions, never as a dimension (the alarms watch [Upstream] only).
func TestEveryRecordCarriesTheRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "ap-southeast-2")
	for _, tc := range []struct {
		e    *Emitter
		want string
	}{{&Emitter{Region: "eu-west-1"}, "eu-west-1"}, {&Emitter{}, "ap-southeast-2"}} {
		var buf bytes.Buffer
		tc.e.W = &buf
		tc.e.Emit(RotationSucceeded, 1, Count, "docker-hub", map[string]any{"Region": "overridden?"})
		tc.e.EmitPerSecret(PullsRemaining, 3, Count, "docker-hub", "ecr-pullthroughcache/hub", nil)
		tc.e.EmitReplica(ReplicationFailed, 1, Count, "docker-hub", "eu-central-1", nil)
		lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
		if len(lines) != 3 {
			t.Fatalf("%d records: %q", len(lines), buf.String())
		}
		for _, l := range lines {
			var rec struct {
				AWS struct {
					CloudWatchMetrics []struct{ Dimensions [][]string }
				} `json:"_aws"`
				Region string
			}
			if err := json.Unmarshal(l, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Region != tc.want {
				t.Errorf("Region %q, want %q: %s", rec.Region, tc.want, l)
			}
			for _, set := range rec.AWS.CloudWatchMetrics[0].Dimensions {
				for _, d := range set {
					if d == RegionProperty {
						t.Errorf("Region is a dimension: %s", l)
					}
				}
			}
		}
	}
}

// TestEmitReplica: a dimension-less set (what the one ReplicationFailed alarm watches, whatever
// the upstream and Region) and [Upstream, ReplicaRegion], with both members at top level.
func TestEmitReplica(t *testing.T) {
	var buf bytes.Buffer
	e := &Emitter{W: &buf, Region: "us-east-1"}
	e.EmitReplica(ReplicationFailed, 1, Count, "github-container-registry", "eu-west-1", map[string]any{"ReplicaRegion": "overridden?", "secret": "ecr-pullthroughcache/ghcr"})
	// The raw line: an empty dimension set must be [], never null (EMF rejects null).
	if !bytes.Contains(buf.Bytes(), []byte(`"Dimensions":[[],["Upstream","ReplicaRegion"]]`)) {
		t.Errorf("dimensions: %s", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatal(err)
	}
	if rec[ReplicationFailed] != 1.0 || rec["Upstream"] != "github-container-registry" || rec[ReplicaRegionDimension] != "eu-west-1" ||
		rec["Region"] != "us-east-1" || rec["secret"] != "ecr-pullthroughcache/ghcr" {
		t.Errorf("record %v", rec)
	}
}
