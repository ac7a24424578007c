package faults

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// faultySM is an SDK client whose every attempt goes through inj, with SDK retries off so
// that each injected fault reaches the product code (the harsher case: with the SDK's default
// three attempts most single faults would be retried away before the product saw them).
func faultySM(inj *Injector, endpoint string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = inj.Client()
		o.RetryMaxAttempts = 1
	})
}

// faultyECR is the same for ECR.
func faultyECR(inj *Injector, endpoint string) *ecr.Client {
	return ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = inj.Client()
		o.RetryMaxAttempts = 1
	})
}

// cleanSM is a fault-free client to sm for setup and checks.
func cleanSM(sm smServer) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(sm.URL())
		o.HTTPClient = &http.Client{Transport: sharedTransport}
	})
}

// instantSleep makes upstream retry waits free: only time changes, not behaviour.
func instantSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// withInstantSleep wraps a provider so its upstreams wait without sleeping.
func withInstantSleep(p upstream.Provider) upstream.Provider {
	inner := p.New
	p.New = func(src []byte, o upstream.Options) (upstream.Upstream, error) {
		o.Sleep = instantSleep
		return inner(src, o)
	}
	return p
}

// allProviders are every provider, with instant retry waits.
func allProviders() map[string]upstream.Provider {
	out := map[string]upstream.Provider{}
	for name, p := range providers.All() {
		out[name] = withInstantSleep(p)
	}
	return out
}

// smFront stands in front of the Secrets Manager (moto or localsm) for the provisioner: every
// call is proxied to it, except RotateSecret, which neither can finish here (moto runs Lambda
// functions only in Docker; the tests' localsm invokes none). RotateSecret is played by
// testenv.RotatingSecretsManager: it stages the pending version and invokes the rotator's
// steps, as Secrets Manager would, with fault-free clients — that work is Secrets Manager's and
// the rotation Lambda's, not the provisioner's. The provisioner's RotateSecret is thereby one
// real HTTP call through the injector, the same against either server.
type smFront struct {
	srv      *httptest.Server
	rotating *testenv.RotatingSecretsManager
}

func newSMFront(t testing.TB, logs io.Writer, sm smServer, standins pinned.Standins) *smFront {
	t.Helper()
	target, _ := url.Parse(sm.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = sharedTransport
	rot := &rotation.Rotator{SM: cleanSM(sm), Providers: allProviders(), Standins: standins, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	f := &smFront{rotating: &testenv.RotatingSecretsManager{
		Client: cleanSM(sm),
		Invoke: func(ctx context.Context, step, secretID, token string) error {
			return rot.Handle(ctx, rotation.Event{Step: rotation.Step(step), SecretID: secretID, ClientRequestToken: token})
		},
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "secretsmanager.RotateSecret" {
			proxy.ServeHTTP(w, r)
			return
		}
		f.rotate(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// rotateInput is RotateSecret's awsJson1.1 request.
type rotateInput struct {
	SecretID           *string `json:"SecretId"`
	ClientRequestToken *string `json:"ClientRequestToken"`
	RotationLambdaARN  *string `json:"RotationLambdaARN"`
	RotationRules      *struct {
		AutomaticallyAfterDays *int64  `json:"AutomaticallyAfterDays"`
		Duration               *string `json:"Duration"`
		ScheduleExpression     *string `json:"ScheduleExpression"`
	} `json:"RotationRules"`
	RotateImmediately *bool `json:"RotateImmediately"`
}

func (f *smFront) rotate(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	var in rotateInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"__type":"SerializationException","message":"bad RotateSecret body"}`))
		return
	}
	sin := &secretsmanager.RotateSecretInput{
		SecretId: in.SecretID, ClientRequestToken: in.ClientRequestToken, RotationLambdaARN: in.RotationLambdaARN, RotateImmediately: in.RotateImmediately,
	}
	if in.RotationRules != nil {
		sin.RotationRules = &smtypes.RotationRulesType{}
		sin.RotationRules.AutomaticallyAfterDays = in.RotationRules.AutomaticallyAfterDays
		sin.RotationRules.Duration = in.RotationRules.Duration
		sin.RotationRules.ScheduleExpression = in.RotationRules.ScheduleExpression
	}
	// Secrets Manager finishes what it accepted even if the caller goes away.
	out, err := f.rotating.RotateSecret(context.WithoutCancel(r.Context()), sin)
	if err != nil {
		code, msg := "InternalServiceError", err.Error()
		var ae smithy.APIError
		if errors.As(err, &ae) {
			code, msg = ae.ErrorCode(), ae.ErrorMessage()
		}
		b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
		w.WriteHeader(400)
		_, _ = w.Write(b)
		return
	}
	b, _ := json.Marshal(map[string]string{"ARN": aws.ToString(out.ARN), "Name": aws.ToString(out.Name), "VersionId": aws.ToString(out.VersionId)})
	_, _ = w.Write(b)
}
