package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// recorder is a fake Upstream that records every call in order ("tokens <prefix>",
// "revoke <label>", "mint <label>") and fails the calls it is told to.
type recorder struct {
	calls     []string
	listed    []Token
	listErr   error
	revokeErr map[string]error // by label
	mintErr   error
}

func (r *recorder) Registry() string { return "fake-registry" }

func (r *recorder) Mint(_ context.Context, req MintRequest) (Minted, error) {
	r.calls = append(r.calls, "mint "+req.Label)
	if r.mintErr != nil {
		return Minted{}, r.mintErr
	}
	return Minted{Credential: Credential{Username: "u", AccessToken: "PLANTED-minted"}, Token: Token{ID: "id-" + req.Label, Label: req.Label}}, nil
}

func (r *recorder) Tokens(_ context.Context, prefix string) ([]Token, error) {
	r.calls = append(r.calls, "tokens "+prefix)
	if r.listErr != nil {
		return nil, r.listErr
	}
	return slices.Clone(r.listed), nil
}

func (r *recorder) Revoke(_ context.Context, t Token) error {
	r.calls = append(r.calls, "revoke "+t.Label)
	return r.revokeErr[t.Label]
}

func (r *recorder) Verify(context.Context, Credential) (Verification, error) {
	r.calls = append(r.calls, "verify")
	return Verification{}, nil
}

const prefix = "ptc-0123456789ab-"

func tok(label string) Token { return Token{ID: "id-" + label, Label: label} }

func wantCalls(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	if !slices.Equal(r.calls, want) {
		t.Fatalf("calls\n got %q\nwant %q", r.calls, want)
	}
}

func TestRevokeLabelledRevokesOnlyUnclaimedTokensUnderThePrefixInListOrder(t *testing.T) {
	r := &recorder{listed: []Token{
		tok(prefix + "v3"), tok(prefix + "v1"),
		tok("ptc-ffffffffffff-v1"), // another secret's, let through by a sloppy upstream filter
		tok("my-own-laptop"),       // a person's
		tok(prefix + "v2"), tok(prefix + "v4"),
	}}
	keep := func(t Token) bool { return t.Label == prefix+"v2" || t.Label == prefix+"v4" }
	var heard []string
	revoked, failed, err := RevokeLabelled(context.Background(), r, prefix, keep, func(t Token, err error) error {
		heard = append(heard, fmt.Sprintf("%s:%v", t.Label, err))
		return nil
	})
	if err != nil || revoked != 2 || failed != 0 {
		t.Fatalf("revoked %d, failed %d, err %v; want 2, 0, nil", revoked, failed, err)
	}
	wantCalls(t, r, "tokens "+prefix, "revoke "+prefix+"v3", "revoke "+prefix+"v1")
	if !slices.Equal(heard, []string{prefix + "v3:<nil>", prefix + "v1:<nil>"}) {
		t.Fatalf("each heard %q", heard)
	}
}

func TestRevokeLabelledNilKeepRevokesEveryTokenOfThePrefix(t *testing.T) {
	r := &recorder{listed: []Token{tok(prefix + "a"), tok(prefix + "b")}}
	revoked, failed, err := RevokeLabelled(context.Background(), r, prefix, nil, nil)
	if err != nil || revoked != 2 || failed != 0 {
		t.Fatalf("revoked %d, failed %d, err %v", revoked, failed, err)
	}
	wantCalls(t, r, "tokens "+prefix, "revoke "+prefix+"a", "revoke "+prefix+"b")
}

// finishSecret's policy: a failure is counted and heard, and the run goes on.
func TestRevokeLabelledCountsFailuresAndGoesOnWhenEachReturnsNil(t *testing.T) {
	boom := errors.New("HTTP 503")
	r := &recorder{
		listed:    []Token{tok(prefix + "a"), tok(prefix + "b"), tok(prefix + "c"), tok(prefix + "d")},
		revokeErr: map[string]error{prefix + "a": boom, prefix + "c": boom},
	}
	var failures []string
	revoked, failed, err := RevokeLabelled(context.Background(), r, prefix, nil, func(t Token, err error) error {
		if err != nil {
			failures = append(failures, t.Label)
		}
		return nil
	})
	if err != nil || revoked != 2 || failed != 2 {
		t.Fatalf("revoked %d, failed %d, err %v; want 2, 2, nil", revoked, failed, err)
	}
	wantCalls(t, r, "tokens "+prefix, "revoke "+prefix+"a", "revoke "+prefix+"b", "revoke "+prefix+"c", "revoke "+prefix+"d")
	if !slices.Equal(failures, []string{prefix + "a", prefix + "c"}) {
		t.Fatalf("each heard failures %q", failures)
	}
}

// Delete's and the undo's policy: the first failure ends the run with its error.
func TestRevokeLabelledStopsWhenEachReturnsAnError(t *testing.T) {
	boom := errors.New("HTTP 500")
	r := &recorder{
		listed:    []Token{tok(prefix + "a"), tok(prefix + "b"), tok(prefix + "c")},
		revokeErr: map[string]error{prefix + "b": boom},
	}
	revoked, failed, err := RevokeLabelled(context.Background(), r, prefix, nil, FailFast)
	if !errors.Is(err, boom) || revoked != 1 || failed != 1 {
		t.Fatalf("revoked %d, failed %d, err %v; want 1, 1, the revocation's error", revoked, failed, err)
	}
	wantCalls(t, r, "tokens "+prefix, "revoke "+prefix+"a", "revoke "+prefix+"b")

	r = &recorder{listed: r.listed, revokeErr: r.revokeErr}
	_, _, err = RevokeLabelled(context.Background(), r, prefix, nil, func(t Token, err error) error {
		if err != nil {
			return fmt.Errorf("revoking token %s: %w", t.Label, err)
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "revoking token "+prefix+"b") {
		t.Fatalf("each's error was not returned: %v", err)
	}
}

func TestRevokeLabelledListingFailureRevokesNothing(t *testing.T) {
	boom := errors.New("HTTP 502")
	r := &recorder{listErr: boom, listed: []Token{tok(prefix + "a")}}
	revoked, failed, err := RevokeLabelled(context.Background(), r, prefix, nil, func(Token, error) error {
		t.Fatal("each called although nothing was listed")
		return nil
	})
	if !errors.Is(err, boom) || revoked != 0 || failed != 0 {
		t.Fatalf("revoked %d, failed %d, err %v", revoked, failed, err)
	}
	if !strings.Contains(err.Error(), "listing fake-registry tokens labelled "+prefix) {
		t.Fatalf("the error does not say what was listed: %v", err)
	}
	wantCalls(t, r, "tokens "+prefix)
}

func TestRevokeLabelledRefusesAnEmptyPrefix(t *testing.T) {
	r := &recorder{listed: []Token{tok("someone's token")}}
	if _, _, err := RevokeLabelled(context.Background(), r, "", nil, nil); err == nil || !strings.Contains(err.Error(), "empty label prefix") {
		t.Fatalf("empty prefix: %v", err)
	}
	wantCalls(t, r)
}

func TestMintLabelledRevokesOrphansBeforeMinting(t *testing.T) {
	label := prefix + "v2"
	r := &recorder{listed: []Token{tok(prefix + "v1"), tok(label), tok(prefix + "v0")}}
	var heard []string
	// The rotator's policy: only this version's own token is an orphan.
	m, err := MintLabelled(context.Background(), r, MintRequest{VersionID: "v2", Label: label}, prefix,
		func(t Token) bool { return t.Label != label }, func(t Token) { heard = append(heard, t.Label) })
	if err != nil || m.Token.Label != label {
		t.Fatalf("minted %+v, err %v", m.Token, err)
	}
	wantCalls(t, r, "tokens "+prefix, "revoke "+label, "mint "+label)
	if !slices.Equal(heard, []string{label}) {
		t.Fatalf("revoked heard %q", heard)
	}

	// The provisioner's policy: the secret does not exist yet, so every labelled token is an
	// orphan.
	r = &recorder{listed: []Token{tok(prefix + "v1"), tok(prefix + "v0"), tok("ptc-ffffffffffff-v1")}}
	if _, err := MintLabelled(context.Background(), r, MintRequest{VersionID: "v9", Label: prefix + "v9"}, prefix, nil, nil); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, r, "tokens "+prefix, "revoke "+prefix+"v1", "revoke "+prefix+"v0", "mint "+prefix+"v9")
}

func TestMintLabelledMintsNothingWhenTheCleanUpFails(t *testing.T) {
	label := prefix + "v2"
	boom := errors.New("HTTP 500")
	for _, tc := range []struct {
		name  string
		r     *recorder
		calls []string
		want  string
	}{
		{"listing fails", &recorder{listErr: boom}, []string{"tokens " + prefix}, "listing fake-registry tokens labelled " + prefix},
		{"revoking fails", &recorder{listed: []Token{tok(prefix + "v1"), tok(prefix + "v0")}, revokeErr: map[string]error{prefix + "v1": boom}},
			[]string{"tokens " + prefix, "revoke " + prefix + "v1"}, "revoking fake-registry token " + prefix + "v1 left by an earlier attempt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MintLabelled(context.Background(), tc.r, MintRequest{VersionID: "v2", Label: label}, prefix, nil, nil)
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			var me *MintError
			if errors.As(err, &me) {
				t.Fatalf("a clean-up failure reads as a failed Mint: %v", err)
			}
			wantCalls(t, tc.r, tc.calls...)
		})
	}
}

func TestMintLabelledReportsAFailedMintAsMintError(t *testing.T) {
	label := prefix + "v2"
	boom := errors.New("create access token: HTTP 500")
	r := &recorder{mintErr: boom}
	_, err := MintLabelled(context.Background(), r, MintRequest{VersionID: "v2", Label: label}, prefix, nil, nil)
	var me *MintError
	if !errors.As(err, &me) || me.Label != label || !errors.Is(err, boom) || err.Error() != boom.Error() {
		t.Fatalf("err %v (%T), want a *MintError for %s with the cause's message", err, err, label)
	}
	wantCalls(t, r, "tokens "+prefix, "mint "+label)
}

func TestMintLabelledRefusesALabelOutsideThePrefix(t *testing.T) {
	for _, p := range []string{"", "ptc-ffffffffffff-"} {
		r := &recorder{}
		if _, err := MintLabelled(context.Background(), r, MintRequest{Label: prefix + "v1"}, p, nil, nil); err == nil || !strings.Contains(err.Error(), "not under the label prefix") {
			t.Fatalf("prefix %q: %v", p, err)
		}
		wantCalls(t, r)
	}
}
