package testenv

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestGateLetsOneRequestThrough plays the backend moto is: it records how many requests it
// serves at once. Many clients at once, some of which give up while their request is being
// served, must never make it serve two.
func TestGateLetsOneRequestThrough(t *testing.T) {
	var inFlight, most, served atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // long enough for others to arrive while this one runs
		served.Add(1)
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	gate, endpoint, err := startGate(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%4 == 0 { // a client that gives up while its request may be at the backend
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	// Requests of clients that gave up may still be finishing at the backend.
	for deadline := time.Now().Add(10 * time.Second); inFlight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := most.Load(); got != 1 {
		t.Fatalf("the backend served %d requests at once; the gate must let exactly one through", got)
	}
	if served.Load() < 30 {
		t.Fatalf("only %d of 40 requests reached the backend; the 30 patient ones must all get through", served.Load())
	}
}

// TestGateWaitsForARequestItsClientAbandoned: a client that gives up while moto is still
// working on its request must not free the gate; moto would serve the next one beside it.
func TestGateWaitsForARequestItsClientAbandoned(t *testing.T) {
	arrived, release := make(chan string, 2), make(chan struct{})
	var inFlight, most atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		if n > most.Load() {
			most.Store(n)
		}
		arrived <- r.URL.Path
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	defer backend.Close()
	gate, endpoint, err := startGate(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()

	ctx, cancel := context.WithCancel(context.Background())
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/slow", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if p := <-arrived; p != "/slow" {
		t.Fatalf("first request at the backend: %s", p)
	}
	cancel() // the client gives up while the backend is still working on /slow
	<-slowDone
	fastDone := make(chan struct{})
	go func() {
		defer close(fastDone)
		if resp, err := http.Get(endpoint + "/fast"); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case p := <-arrived:
		close(release)
		t.Fatalf("%s reached the backend while /slow was still being served", p)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-fastDone
	if got := most.Load(); got != 1 {
		t.Fatalf("the backend served %d requests at once", got)
	}
}

// TestConcurrentClientsThroughTheGate is the bug this gate exists for: concurrent CreateSecret
// and DescribeSecret calls, with SDK retries off so that any 500 would surface. Through the
// gate every call succeeds.
func TestConcurrentClientsThroughTheGate(t *testing.T) {
	m := StartMotoT(t)
	sm := secretsmanager.NewFromConfig(AWSConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
		o.RetryMaxAttempts = 1
	})
	ctx := Context(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("gate-test/%d", i)
			if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("x")}); err != nil {
				errs <- err
				return
			}
			for range 5 {
				if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The gate answers ValidateResourcePolicy, which moto lacks, with localsm's checks, without
// passing it to the backend; every other call goes through.
func TestGateAnswersValidateResourcePolicy(t *testing.T) {
	var reached atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		http.Error(w, "not moto", http.StatusTeapot)
	}))
	defer backend.Close()
	gate, url, err := startGate(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	sm := secretsmanager.NewFromConfig(AWSConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 1
	})
	ctx := context.Background()
	for doc, pass := range map[string]bool{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:PutSecretValue","Resource":"*"}]}`:  true,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`: false,
		`{"Statement":`: false,
	} {
		out, err := sm.ValidateResourcePolicy(ctx, &secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String("ecr-pullthroughcache/x"), ResourcePolicy: aws.String(doc)})
		if err != nil {
			t.Fatal(err)
		}
		if out.PolicyValidationPassed != pass || (pass == (len(out.ValidationErrors) > 0)) {
			t.Errorf("%s: passed=%v errors=%+v, want passed=%v", doc, out.PolicyValidationPassed, out.ValidationErrors, pass)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("ValidateResourcePolicy reached the backend %d times", n)
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("x")}); err == nil || reached.Load() != 1 {
		t.Fatalf("other calls must reach the backend: %v, %d", err, reached.Load())
	}
}
