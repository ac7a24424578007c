package localsm_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// TestRealRotatorEndToEnd lets localsm invoke the project's real rotator (internal/rotation),
// served behind the runtime interface emulator's Invoke path, against the Docker Hub emulator:
// Secrets Manager, rotation function and upstream all talk over HTTP as in AWS.
func TestRealRotatorEndToEnd(t *testing.T) {
	const (
		hubUser     = "ptc-hub-user"
		hubPassword = "PLANTED-hub-password-5e1d77"
		fnARN       = "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator"
	)
	ctx := testenv.Context(t)
	hub := dockerhubemu.New(dockerhubemu.Options{}, dockerhubemu.Account{Username: hubUser, Password: hubPassword})
	hubSrv := httptest.NewServer(hub)
	t.Cleanup(hubSrv.Close)

	// The rotation function: decode the event as the Lambda runtime would, run Rotator.Handle.
	var rot *rotation.Rotator
	logs := &rotationtest.SyncBuffer{}
	fnSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/function/invocations" {
			http.Error(w, "not an Invoke request", http.StatusNotFound)
			return
		}
		var ev rotation.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := rot.Handle(r.Context(), ev); err != nil {
			_ = json.NewEncoder(w).Encode(map[string]string{"errorMessage": err.Error(), "errorType": "errorString"})
			return
		}
		_, _ = w.Write([]byte("null"))
	}))
	t.Cleanup(fnSrv.Close)

	srv := localsm.New(localsm.Options{Synchronous: true, Invoker: localsm.HTTPInvoker{Endpoints: map[string]string{fnARN: fnSrv.URL}}.Invoke})
	smSrv := httptest.NewServer(srv)
	t.Cleanup(smSrv.Close)
	sm := client(smSrv.URL)
	rot = &rotation.Rotator{
		SM:        sm,
		Providers: map[string]upstream.Provider{dockerhub.Provider.Registry: dockerhub.Provider},
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}

	// The source secret and the managed secret with a first token, as the provisioner makes them.
	sourceJSON, _ := json.Marshal(map[string]any{"username": hubUser, "password": hubPassword, "apiUrl": hubSrv.URL, "allowedSecrets": []string{"ecr-pullthroughcache/docker-hub"}})
	src, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ptc-source/docker-hub"), SecretString: aws.String(string(sourceJSON))})
	if err != nil {
		t.Fatal(err)
	}
	name := ptcsecret.Prefix + "docker-hub"
	key := ptcsecret.Key(localsm.DefaultRegion, localsm.DefaultAccountID, name)
	up, err := upstream.FromSource(ctx, sm, upstream.SourceRequest{
		Name: "source secret", Registry: dockerhub.Provider.Registry, ARN: aws.ToString(src.ARN), ForSecret: name, Providers: rot.Providers,
		Options: upstream.Options{RegistryURL: hubSrv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	minted, err := upstream.MintLabelled(ctx, up, upstream.MintRequest{SecretName: name, VersionID: tok(1), Label: ptcsecret.Label(key, tok(1))}, ptcsecret.LabelPrefix(key), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := minted.Credential.Marshal()
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String(doc),
		Tags: []smtypes.Tag{
			{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(dockerhub.Provider.Registry)},
			{Key: aws.String(ptcsecret.TagSourceSecret), Value: src.ARN},
			{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(hubSrv.URL)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ARN)

	rotate := func(n int, immediately bool) error {
		_, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
			SecretId: aws.String(arn), ClientRequestToken: aws.String(tok(n)), RotationLambdaARN: aws.String(fnARN),
			RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)")}, RotateImmediately: aws.Bool(immediately),
		})
		return err
	}
	lastRotation := func() localsm.Rotation {
		r := srv.Rotations()
		return r[len(r)-1]
	}
	current := func() (string, ptcsecret.Value) {
		t.Helper()
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		v, err := ptcsecret.Parse(aws.ToString(out.SecretString))
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.VersionId), v
	}
	login := func(v ptcsecret.Value) error {
		return registryauth.Check(ctx, nil, registryauth.Target{Registry: hubSrv.URL, Repository: "library/alpine"}, registryauth.Credential{Username: v.Username, Password: v.AccessToken})
	}
	tokenVersions := func() []string {
		var out []string
		for _, tk := range hub.Tokens() {
			if v, ok := ptcsecret.VersionFromLabel(key, tk.Label); ok && tk.Active {
				out = append(out, vname(v))
			}
		}
		slices.Sort(out)
		return out
	}

	// 1. Turning rotation on: testSecret alone, on a copy of the current value, mints nothing.
	if err := rotate(2, false); err != nil {
		t.Fatal(err)
	}
	if r := lastRotation(); r.Err != "" || len(r.Steps) != 1 || r.Steps[0].Step != "testSecret" {
		t.Fatalf("enabling rotation: %+v", r)
	}
	if got := tokenVersions(); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("tokens after enabling rotation: %v", got)
	}

	// 2. Two full rotations: each mints, verifies and promotes; the token two generations old goes.
	for _, n := range []int{3, 4} {
		srv.ResetCalls()
		if err := rotate(n, true); err != nil {
			t.Fatal(err)
		}
		r := lastRotation()
		if r.Err != "" || !r.Promoted || len(r.Steps) != 4 {
			t.Fatalf("rotation to v%d: %+v\nlogs: %s", n, r, logs.String())
		}
		// RotateSecret itself plus what the rotator called; DESIGN budgets the rotator's ≤ 9.
		calls := srv.Calls()
		if len(calls)-1 > 9 {
			t.Errorf("rotation to v%d made %d Secrets Manager calls (budget 9): %v", n, len(calls)-1, calls)
		}
		t.Logf("rotation to v%d: the rotator made %d Secrets Manager calls: %v", n, len(calls)-1, calls[1:])
		id, v := current()
		if id != tok(n) {
			t.Fatalf("AWSCURRENT is %s after rotating to v%d", vname(id), n)
		}
		if err := login(v); err != nil {
			t.Fatalf("the new current token of v%d does not log in: %v", n, err)
		}
	}
	if got := tokenVersions(); !slices.Equal(got, []string{"v3", "v4"}) {
		t.Fatalf("active tokens %v, want those of AWSCURRENT (v4) and AWSPREVIOUS (v3)", got)
	}
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtStages(d.VersionIdsToStages, false); got != "{v3:[AWSPREVIOUS] v4:[AWSCURRENT AWSPENDING]}" {
		t.Errorf("stages %s", got)
	}
	if d.LastRotatedDate == nil || !aws.ToBool(d.RotationEnabled) {
		t.Errorf("DescribeSecret: LastRotatedDate %v RotationEnabled %v", d.LastRotatedDate, d.RotationEnabled)
	}

	// 3. A failing createSecret (Docker Hub refuses to mint) leaves AWSCURRENT working and
	// blocks the next RotateSecret until the unfinished version is dealt with.
	hub.Inject(http.MethodPost, "/v2/access-tokens", http.StatusForbidden, 100)
	if err := rotate(5, true); err != nil {
		t.Fatal(err)
	}
	r := lastRotation()
	if r.Err == "" || len(r.Steps) != 1 || r.Steps[0].Step != "createSecret" {
		t.Fatalf("rotation with a refused login: %+v", r)
	}
	id, v := current()
	if id != tok(4) || login(v) != nil {
		t.Fatalf("AWSCURRENT after the failed rotation: %s, login %v", vname(id), login(v))
	}
	err = rotate(6, true)
	wantCode(t, "RotateSecret after the failed rotation", err, "InvalidRequestException")

	// Nothing secret leaked into what localsm recorded or the rotator logged.
	var recorded strings.Builder
	for _, r := range srv.Rotations() {
		recorded.WriteString(r.Err)
		for _, s := range r.Steps {
			recorded.WriteString(s.Err)
		}
	}
	for _, planted := range []string{hubPassword, v.AccessToken} {
		for where, text := range map[string]string{"Rotations()": recorded.String(), "rotator logs": logs.String()} {
			if strings.Contains(text, planted) {
				t.Errorf("a secret (%d chars, starts %q) appears in %s", len(planted), planted[:4], where)
			}
		}
	}
}
