package customresource

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

// A request whose ResponseURL the pinned policy refuses gets no PUT at all and never reaches
// the handler: whoever sent it would read the answer.
func TestForeignResponseURLGetsNoAnswer(t *testing.T) {
	h := newHarness()
	s3 := newFakeS3(t, nil)
	h.opts.CheckResponseURL = func(string) error { return errors.New("not CloudFormation's response bucket") }
	var ran atomic.Bool
	err := Wrap(func(ctx context.Context, req Request) (Result, error) { ran.Store(true); return Result{}, nil }, h.opts)(context.Background(), newRequest(s3.url(), "Delete"))
	if err == nil || !strings.Contains(err.Error(), "not CloudFormation's response bucket") {
		t.Fatalf("error %v: want the refusal", err)
	}
	if ran.Load() {
		t.Fatal("the handler ran for a request answered nowhere")
	}
	if n := len(s3.recorded()); n != 0 {
		t.Fatalf("%d PUTs to a refused ResponseURL", n)
	}
	checkNoQueryLeak(t, h.logs.String(), err)
}

// A request Authenticate refuses is answered FAILED with the reason (its URL is CloudFormation's)
// and the handler never runs.
func TestUnauthenticatedRequestIsNotActedOn(t *testing.T) {
	h := newHarness()
	s3 := newFakeS3(t, nil)
	h.opts.Authenticate = func(ctx context.Context, req Request) error {
		return errors.New("request refused: CloudFormation shows resource PTC in CREATE_COMPLETE")
	}
	var ran atomic.Bool
	err := Wrap(func(ctx context.Context, req Request) (Result, error) { ran.Store(true); return Result{}, nil }, h.opts)(context.Background(), newRequest(s3.url(), "Delete"))
	if err != nil {
		t.Fatalf("Wrap: %v (the refusal was deliverable)", err)
	}
	if ran.Load() {
		t.Fatal("the handler ran for a request Authenticate refused")
	}
	puts := s3.recorded()
	if len(puts) != 1 {
		t.Fatalf("%d PUTs, want 1", len(puts))
	}
	r := checkPut(t, puts[0])
	if r.Status != StatusFailed || !strings.Contains(r.Reason, "CREATE_COMPLETE") || r.PhysicalResourceID != "ptc-existing-id" {
		t.Fatalf("answer %+v", r)
	}
	checkNoQueryLeak(t, h.logs.String(), err)
}

func TestAuthenticatedRequestRuns(t *testing.T) {
	h := newHarness()
	s3 := newFakeS3(t, nil)
	var asked atomic.Int32
	h.opts.Authenticate = func(ctx context.Context, req Request) error { asked.Add(1); return nil }
	h.opts.CheckResponseURL = func(string) error { return nil }
	err := Wrap(func(ctx context.Context, req Request) (Result, error) {
		return Result{PhysicalResourceID: "ptc-new"}, nil
	}, h.opts)(context.Background(), newRequest(s3.url(), "Create"))
	if err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 1 {
		t.Fatalf("Authenticate called %d times", asked.Load())
	}
	if r := checkPut(t, s3.recorded()[0]); r.Status != StatusSuccess || r.PhysicalResourceID != "ptc-new" {
		t.Fatalf("answer %+v", r)
	}
}
