package templatecheck

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
)

// dashboardMetrics are the metrics the dashboard may name: every one the functions emit, and
// PullsRemaining, which the Docker Hub upstream emits once it reads the pull budget.
var dashboardMetrics = []string{metrics.RotationSucceeded, metrics.RotationStepFailed, metrics.VerificationFailed,
	metrics.RevocationFailed, metrics.TokensRevoked, metrics.TokenDaysToExpiry, metrics.ProvisionFailed,
	rotation.FactsNotRecorded, "PullsRemaining", metrics.ReplicationFailed}

// TestDashboardShowsWhatTheFunctionsEmit: the dashboard is valid JSON once substituted, every
// metric it searches is one the code emits in the PTCCredentials namespace, it covers the
// rotations, failures, days to expiry and pull budget, and its per-secret queries read the
// rotator's own log group.
func TestDashboardShowsWhatTheFunctionsEmit(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	if got := resourcesOfType(doc, "AWS::CloudWatch::Dashboard"); !slices.Equal(got, []string{"Dashboard"}) {
		t.Fatalf("dashboards: %v, want Dashboard", got)
	}
	body, ok := get(doc, "Resources", "Dashboard", "Properties", "DashboardBody", "Fn::Sub").(string)
	if !ok {
		t.Fatal("DashboardBody is not a !Sub string")
	}
	logGroup := render(get(doc, "Resources", "RotatorLogGroup", "Properties", "LogGroupName"))
	body = strings.NewReplacer("${AWS::Region}", "us-east-1", "${AWS::StackName}", "stack").Replace(body)
	if strings.Contains(body, "${") {
		t.Errorf("DashboardBody substitutes something other than Region and StackName")
	}
	var dash struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Title, Query string
				Metrics      [][]map[string]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("DashboardBody is not JSON: %v", err)
	}
	// ReplicationFailed is the one metric with another dimension set (metrics.EmitReplica).
	searchRE := regexp.MustCompile(`^SEARCH\('\{PTCCredentials,Upstream(?:,ReplicaRegion)?\} MetricName="([A-Za-z]+)"', '(Sum|Minimum|Maximum)', \d+\)$`)
	shown := map[string]bool{}
	for _, w := range dash.Widgets {
		switch w.Type {
		case "metric":
			for _, m := range w.Properties.Metrics {
				for _, e := range m {
					got := searchRE.FindStringSubmatch(e["expression"].(string))
					if got == nil || !slices.Contains(dashboardMetrics, got[1]) {
						t.Errorf("widget %q searches %v: not a metric the functions emit", w.Properties.Title, e["expression"])
						continue
					}
					shown[got[1]] = true
				}
			}
		case "log":
			want := "SOURCE '" + strings.ReplaceAll(logGroup, "${AWS::StackName}", "stack") + "' | "
			if !strings.HasPrefix(w.Properties.Query, want) {
				t.Errorf("widget %q queries %q, want the rotator's log group (%s)", w.Properties.Title, w.Properties.Query, want)
			}
		default:
			t.Errorf("widget %q has type %q", w.Properties.Title, w.Type)
		}
	}
	for _, m := range []string{metrics.RotationSucceeded, metrics.RotationStepFailed, metrics.TokenDaysToExpiry, "PullsRemaining", metrics.ReplicationFailed} {
		if !shown[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}
