package testenv

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

// TestBeginRotationStagesAlike: harnesses run the same rotation script against moto and
// LocalSM, so BeginRotation must leave both in the same state — a pending version with no value
// (RotateImmediately=true) or with a copy of AWSCURRENT (false), rotation enabled, AWSCURRENT
// where it was — and a second BeginRotation after a finished rotation must work on both.
func TestBeginRotationStagesAlike(t *testing.T) {
	servers := map[string]SecretsManagerServer{"moto": StartMotoT(t), "localsm": StartLocalSMT(t)}
	ctx := Context(t)
	got := map[string]string{}
	for name, srv := range servers {
		sm := srv.SecretsManager()
		var log []string
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String("begin-rotation/alike"), ClientRequestToken: aws.String("00000000-0000-4000-8000-000000000001"), SecretString: aws.String("one"),
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		arn := aws.ToString(out.ARN)
		snapshot := func(what string) {
			st, err := Stages(ctx, sm, arn)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var parts []string
			for id, s := range st {
				if len(s) == 0 {
					continue // moto lists deprecated versions (a documented deviation)
				}
				s = slices.Clone(s)
				slices.Sort(s)
				parts = append(parts, id[len(id)-1:]+"="+strings.Join(s, "+"))
			}
			slices.Sort(parts)
			d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			log = append(log, fmt.Sprintf("%s: %v rotation=%v", what, parts, aws.ToBool(d.RotationEnabled)))
		}
		value := func(v string) string {
			s, err := ValueOf(ctx, sm, arn, "00000000-0000-4000-8000-00000000000"+v)
			if err != nil {
				return "err=" + err.Error()[:min(40, len(err.Error()))]
			}
			return s
		}

		if err := BeginRotation(ctx, sm, arn, "00000000-0000-4000-8000-000000000002", false); err != nil {
			t.Fatalf("%s: BeginRotation(false): %v", name, err)
		}
		snapshot("copy staged")
		log = append(log, "copy value="+value("2"))
		if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(arn), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String("00000000-0000-4000-8000-000000000002"),
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := BeginRotation(ctx, sm, arn, "00000000-0000-4000-8000-000000000003", true); err != nil {
			t.Fatalf("%s: BeginRotation(true): %v", name, err)
		}
		snapshot("empty staged")
		if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(arn), VersionId: aws.String("00000000-0000-4000-8000-000000000003"), VersionStage: aws.String("AWSPENDING"),
		}); err == nil {
			log = append(log, "empty pending has a value")
		}
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(arn), ClientRequestToken: aws.String("00000000-0000-4000-8000-000000000003"), SecretString: aws.String("three"), VersionStages: []string{"AWSPENDING"},
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(arn), VersionStage: aws.String("AWSCURRENT"),
			MoveToVersionId: aws.String("00000000-0000-4000-8000-000000000003"), RemoveFromVersionId: aws.String("00000000-0000-4000-8000-000000000001"),
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// AWSPENDING is left on the new current, as a finished rotation leaves it.
		if err := BeginRotation(ctx, sm, arn, "00000000-0000-4000-8000-000000000004", true); err != nil {
			t.Fatalf("%s: BeginRotation after a finished rotation: %v", name, err)
		}
		snapshot("next staged")
		got[name] = strings.Join(log, "\n")
	}
	if got["moto"] != got["localsm"] {
		t.Errorf("BeginRotation left different states:\nmoto:\n%s\nlocalsm:\n%s", got["moto"], got["localsm"])
	}
	t.Logf("both:\n%s", got["moto"])
}

// TestLocalSMClusterRoutesByRegion: one endpoint, clients that differ only by Region reach
// different Regions' emulators, and a replica created in one is readable in the other.
func TestLocalSMClusterRoutesByRegion(t *testing.T) {
	l := StartLocalSMCluster(t, localsm.ClusterOptions{Regions: []string{"us-east-1", "eu-west-1"}})
	ctx := Context(t)
	if _, err := l.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("cluster/routes"), SecretString: aws.String("v"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String("eu-west-1")}},
	}); err != nil {
		t.Fatal(err)
	}
	d, err := l.SecretsManagerIn("eu-west-1").DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("cluster/routes")})
	if err != nil || !strings.Contains(aws.ToString(d.ARN), ":eu-west-1:"+AccountID+":") || aws.ToString(d.PrimaryRegion) != "us-east-1" {
		t.Fatalf("replica: %v %+v", err, d)
	}
	if got := l.Cluster.Region("us-east-1").Calls(); !slices.Equal(got, []string{"CreateSecret"}) {
		t.Errorf("home Region calls = %v", got)
	}
	if got := l.Cluster.Region("eu-west-1").Calls(); !slices.Equal(got, []string{"DescribeSecret"}) {
		t.Errorf("eu-west-1 calls = %v", got)
	}
	if !strings.HasPrefix(l.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %s", l.URL())
	}
}
