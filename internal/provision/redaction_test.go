package provision_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
)

// echoHub is a Docker Hub API that refuses every login (either session endpoint) with a 403 whose "detail" quotes the
// password it was sent: the worst a registry (or a proxy in front of it) can do, since
// httpapi puts an API's own explanation into the error message. Every other request goes to
// the emulator behind it.
func echoHub(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/users/login" && r.URL.Path != "/v2/auth/token" {
			next.ServeHTTP(w, r)
			return
		}
		var in struct{ Username, Password, Secret string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"detail": "login refused: password " + in.Password + in.Secret + " is locked"})
	})
}

// Guard: the provisioner tells OnSecret every value of the source secret it read, so that
// customresource.Wrap scrubs them. The source secret points at echoHub, so the Create's error
// quotes the password; the FAILED answer's Reason and every log record must not.
func TestSourceSecretValuesAreScrubbedFromTheAnswer(t *testing.T) {
	e := newEnv(t)
	echo := httptest.NewServer(echoHub(e.hub))
	t.Cleanup(echo.Close)
	e.prov.Standins = pinned.NewStandins(e.hubURL, echo.URL) // an honest-looking Hub API that echoes
	src, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/echo-" + newPrefix()),
		SecretString: aws.String(`{"username":"` + hubUser + `","password":"` + hubPassword + `","apiUrl":"` + echo.URL + `","allowedSecrets":["ecr-pullthroughcache/"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}

	e.prov.OnSecret = customresource.AddSecrets
	cf := &cfnServer{}
	srv := httptest.NewServer(cf)
	t.Cleanup(srv.Close)
	var raw error // the handler's own error, before Wrap scrubs it
	wrapped := customresource.Wrap(func(ctx context.Context, req customresource.Request) (customresource.Result, error) {
		res, err := e.prov.Handle(ctx, provision.Request{
			Type: string(req.RequestType), StackID: req.StackID, LogicalID: req.LogicalResourceID,
			PhysicalID: req.PhysicalResourceID, Properties: req.ResourceProperties, OldProperties: req.OldResourceProperties,
		})
		raw = err
		return customresource.Result{PhysicalResourceID: res.PhysicalID, Data: res.Data}, err
	}, customresource.Options{Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})

	props := e.props(newPrefix())
	props["SourceSecretArn"] = aws.ToString(src.ARN)
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	if err := wrapped(ctx, customresource.Request{
		RequestType: cfn.RequestCreate, ResponseURL: srv.URL + "/cfn-response", StackID: e.stackID,
		RequestID: "req-echo", ResourceType: "Custom::PullThroughCache", LogicalResourceID: "Cache", ResourceProperties: props,
	}); err != nil {
		t.Fatalf("no answer was delivered: %v", err)
	}
	// The attack must work: otherwise the checks below prove nothing.
	if raw == nil || !strings.Contains(raw.Error(), hubPassword) {
		t.Fatal("the handler's error does not quote the planted password: the echoing upstream is not reached")
	}
	a := cf.answers()
	if len(a) != 1 || a[0]["Status"] != "FAILED" {
		t.Fatalf("want exactly one FAILED answer, have %d", len(a))
	}
	reason, _ := a[0]["Reason"].(string)
	if !strings.Contains(reason, "locked") {
		t.Errorf("the Reason lost the upstream's explanation (%d bytes): the scrub should replace only the value", len(reason))
	}
	var all strings.Builder
	for _, b := range cf.bodies {
		all.WriteString(b)
	}
	all.WriteString(e.logs.String())
	if strings.Contains(all.String(), hubPassword) {
		t.Error("the source secret's password (starts \"PLANTE\") reached the CloudFormation answer or a log record")
	}
}
