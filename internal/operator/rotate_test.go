package operator_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// rotatingSM is a localsm that runs real rotations: RotateSecret answers first, then invokes
// the product's rotator in this process, step by step, as Secrets Manager invokes the Lambda.
type rotatingSM struct {
	url    string
	server *localsm.Server
	logs   *syncBuf
	rot    *rotation.Rotator
}

func (r *rotatingSM) URL() string { return r.url }

func (r *rotatingSM) SecretsManager() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(r.url) })
}

const rotatorARN = "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator"

func startRotatingSM(t *testing.T) *rotatingSM {
	t.Helper()
	r := &rotatingSM{logs: &syncBuf{}}
	secrets := &logging.Secrets{}
	var rot *rotation.Rotator
	r.server = localsm.New(localsm.Options{Invoker: func(ctx context.Context, arn string, payload []byte) error {
		var ev rotation.Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return err
		}
		return rot.Handle(ctx, ev)
	}})
	hs := httptest.NewServer(r.server)
	t.Cleanup(hs.Close)
	r.url = hs.URL
	rot = &rotation.Rotator{SM: r.SecretsManager(), Providers: providers.All(), Secrets: secrets,
		Logger: slog.New(logging.Redacting(slog.NewJSONHandler(r.logs, nil), secrets))}
	r.rot = rot
	return r
}

// managedWithSource creates a source secret holding source and a managed secret bound to it,
// with rotation on (the testSecret of the copy done), and returns the managed secret's ARN.
func (w *world) managedWithSource(srv *rotatingSM, name, source string) string {
	w.t.Helper()
	src := w.secret("ptc-source/"+strings.TrimPrefix(name, ptcsecret.Prefix), source, nil)
	arn := w.secret(name, w.hubValue(), map[string]string{
		ptcsecret.TagUpstream: ptcsecret.UpstreamDockerHub, ptcsecret.TagSourceSecret: src, ptcsecret.TagRegistryURL: w.hub.URL})
	if _, err := w.sm.RotateSecret(w.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(rotatorARN),
		RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)")}, RotateImmediately: aws.Bool(false)}); err != nil {
		w.t.Fatal(err)
	}
	if err := srv.server.WaitRotation(w.ctx, arn); err != nil {
		w.t.Fatal(err)
	}
	return arn
}

// TestRotateFollowsToAWSCURRENT: ptc rotate starts a real rotation and prints a line per step
// until AWSCURRENT moves to the new version, with the expiry the rotator recorded.
func TestRotateFollowsToAWSCURRENT(t *testing.T) {
	srv := startRotatingSM(t)
	w := newWorld(t, srv)
	name := ptcsecret.Prefix + "rotate-ok"
	w.managedWithSource(srv, name, w.hub.Source(0))
	ok, err := operator.Rotate(w.ctx, w.env(), name, time.Minute)
	out := w.out.String()
	if err != nil || !ok {
		t.Fatalf("rotate: ok=%v err=%v\n%s\nrotator log:\n%s", ok, err, out, srv.logs.String())
	}
	wantLines(t, out, "rotation of "+name+" started: new version", "finishSecret: AWSCURRENT moved to", "the new token expires 20")
	w.assertNoLeak()
	if strings.Contains(srv.logs.String(), w.hub.SourceSecret) {
		t.Error("the source password reached the rotator's log")
	}
}

// TestRotatePrintsTheRotatorsError: a source whose password Docker Hub refuses fails
// createSecret; rotate says so with the error the rotator recorded, and fails.
func TestRotatePrintsTheRotatorsError(t *testing.T) {
	srv := startRotatingSM(t)
	w := newWorld(t, srv)
	w.now = time.Now() // the rotator records its failure on the real clock
	name := ptcsecret.Prefix + "rotate-bad"
	wrong := "PLANTED-wrong-password-3c2b1a"
	w.managedWithSource(srv, name, w.hub.WrongSourceJSON(wrong))
	ok, err := operator.Rotate(w.ctx, w.env(), name, time.Minute)
	out := w.out.String()
	if err != nil || ok {
		t.Fatalf("rotate with a wrong source password: ok=%v err=%v\n%s", ok, err, out)
	}
	wantLines(t, out, "createSecret failed: minting a docker-hub token for "+name, "AWSCURRENT is still")
	w.assertNoLeak(wrong)
}
