package upstream

import (
	"context"
	"fmt"
	"strings"
)

// The token lifecycle both engines share: the rotator (createSecret, finishSecret) and the
// provisioner (Create, its undo, Delete) find a secret's tokens by label and revoke them, and
// mint a version's token only after revoking what an earlier attempt left. Each engine keeps its
// own policy for what a failure means; what is listed, what is skipped and in which order calls
// are made lives here, once.

// RevokeLabelled lists up's tokens whose label starts with prefix (ptcsecret.LabelPrefix of a
// secret, or one version's ptcsecret.Label) and revokes, in the order the upstream listed them,
// every one that keep does not claim; a nil keep claims none. A listed token whose label does
// not start with prefix is skipped whatever the upstream's filter let through: it belongs to
// another secret, or to a person. An empty prefix is refused for the same reason: it would
// revoke every token the source credential can see.
//
// each, when not nil, hears every revocation attempt with its error (nil when the token was
// revoked), so that the caller logs it in its own words. Returning an error from each stops the
// run there with that error: callers that must fail at the first failure (a Delete that
// CloudFormation retries, an undo) return one, while callers that only count failures
// (finishSecret, whose next rotation retries) return nil and the run goes on. FailFast is the
// each that returns the revocation's own error.
//
// It returns how many tokens it revoked and how many it could not revoke. err is the refusal of
// an empty prefix or a listing failure (nothing was revoked either way), or each's error.
func RevokeLabelled(ctx context.Context, up Upstream, prefix string, keep func(Token) bool, each func(Token, error) error) (revoked, failed int, err error) {
	if prefix == "" {
		return 0, 0, fmt.Errorf("revoking %s tokens: refusing an empty label prefix, which would match every token the source credential can see", up.Registry())
	}
	tokens, err := up.Tokens(ctx, prefix)
	if err != nil {
		return 0, 0, fmt.Errorf("listing %s tokens labelled %s…: %w", up.Registry(), prefix, err)
	}
	for _, t := range tokens {
		if !strings.HasPrefix(t.Label, prefix) || (keep != nil && keep(t)) {
			continue
		}
		rerr := up.Revoke(ctx, t)
		if rerr != nil {
			failed++
		} else {
			revoked++
		}
		if each == nil {
			continue
		}
		if stop := each(t, rerr); stop != nil {
			return revoked, failed, stop
		}
	}
	return revoked, failed, nil
}

// FailFast is the each for RevokeLabelled that stops at the first failed revocation and
// returns its error unchanged.
func FailFast(_ Token, err error) error { return err }

// MintError is what MintLabelled returns when the upstream's Mint call itself failed, as opposed
// to the clean-up before it. The difference matters to a caller that undoes its work: a failed
// Mint may still have minted (the answer can be lost after the upstream acted), so the token
// labelled Label must be looked for; a failed clean-up minted nothing. Its message is the
// cause's.
type MintError struct {
	// Label is the label the token was to carry.
	Label string
	// Err is the upstream's error.
	Err error
}

// Error is the upstream's message: callers wrap it with what they were minting for.
func (e *MintError) Error() string { return e.Err.Error() }

// Unwrap gives errors.Is/As the upstream's error.
func (e *MintError) Unwrap() error { return e.Err }

// MintLabelled mints the token of req.Label after revoking the tokens an earlier attempt at the
// same step left behind: an attempt that died between minting and storing leaves a labelled
// token that no secret version holds, and minting again next to it would leak it. The orphans
// are the tokens listed under prefix (the secret's ptcsecret.LabelPrefix) that keep does not
// claim: the rotator keeps every token but this version's own; the provisioner, whose secret
// does not exist yet, keeps none (nil). Revocation runs first and stops at the first failure,
// before anything is minted, so a retry finds the same orphans again.
//
// revoked, when not nil, hears every orphan revoked, for the caller's log. A failure of Mint is
// returned as a *MintError; a failure to list or revoke names the registry and the label, never
// a value. req.Label must start with prefix, or the token could never be found to revoke.
func MintLabelled(ctx context.Context, up Upstream, req MintRequest, prefix string, keep func(Token) bool, revoked func(Token)) (Minted, error) {
	if prefix == "" || !strings.HasPrefix(req.Label, prefix) {
		// A token minted outside the prefix could never be listed again: nothing would revoke it.
		return Minted{}, fmt.Errorf("minting a %s token: label %q is not under the label prefix %q", up.Registry(), req.Label, prefix)
	}
	_, _, err := RevokeLabelled(ctx, up, prefix, keep, func(t Token, err error) error {
		if err != nil {
			return fmt.Errorf("revoking %s token %s left by an earlier attempt: %w", up.Registry(), t.Label, err)
		}
		if revoked != nil {
			revoked(t)
		}
		return nil
	})
	if err != nil {
		return Minted{}, err
	}
	m, err := up.Mint(ctx, req)
	if err != nil {
		return Minted{}, &MintError{Label: req.Label, Err: err}
	}
	return m, nil
}
