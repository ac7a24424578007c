package provision

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Ownership that a tag cannot claim. ptc:managed-by names the owner; ptc:owner-mac proves it:
// HMAC-SHA256 under a key only the provisioner may read (the template's OwnerKeySecret, denied
// to every other principal by its resource policy) over the Region, account, secret name and
// owner. Whoever can tag a secret can copy a MAC, but not make one for another owner or another
// secret name, so retagging a victim's secret with one's own stack never makes it one's own.

// ownerMACVersion prefixes the tag value, so the scheme can change without guessing.
const ownerMACVersion = "v1:"

// OwnerKeyFunc returns the key that makes and checks ownership proofs.
type OwnerKeyFunc func(ctx context.Context) ([]byte, error)

// StaticOwnerKey is an OwnerKeyFunc for a key already in hand (tests, tools).
func StaticOwnerKey(key []byte) OwnerKeyFunc {
	return func(context.Context) ([]byte, error) { return key, nil }
}

// OwnerKeyFromSecret reads the key from a Secrets Manager secret (its whole SecretString) on
// first use and keeps it; a failed read is retried by the next request. The secret is the
// template's OwnerKeySecret: 64 random characters CloudFormation generates.
func OwnerKeyFromSecret(sm interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}, arn string) OwnerKeyFunc {
	var mu sync.Mutex
	var key []byte
	return func(ctx context.Context) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if key != nil {
			return key, nil
		}
		if arn == "" {
			return nil, errors.New("the provisioner has no OWNER_KEY_SECRET_ARN: deploy it with the template, which sets it")
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("reading the ownership key %s: %w", ptcsecret.NameFromARN(arn), err)
		}
		if len(aws.ToString(out.SecretString)) < 32 {
			return nil, fmt.Errorf("the ownership key %s holds under 32 characters; let the template generate it", ptcsecret.NameFromARN(arn))
		}
		key = []byte(aws.ToString(out.SecretString))
		return key, nil
	}
}

// OwnerMAC is the ptc:owner-mac value proving that owner manages the secret of this name in
// this Region and account.
func OwnerMAC(key []byte, region, account, secretName, owner string) string {
	m := hmac.New(sha256.New, key)
	// NUL separators: no field may contain one, so no two inputs share a message.
	m.Write([]byte("ptc-credentials owner\x00" + region + "\x00" + account + "\x00" + secretName + "\x00" + owner))
	return ownerMACVersion + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// notOurs is checkOwner's refusal: the secret belongs to someone else (or to nobody). Any
// other error from checkOwner is a failure to decide, which must not be taken for a refusal.
type notOurs struct{ msg string }

func (e *notOurs) Error() string { return e.msg }

func notOursf(format string, args ...any) error { return &notOurs{fmt.Sprintf(format, args...)} }

// ownership is what a secret's tags say about who manages it.
type ownership int

const (
	foreign  ownership = iota // not ours: another owner, no owner, or a proof that does not verify
	ours                      // owner tag and a proof that verifies
	legacyOK                  // ours by the owner tag of a release before proofs, and unprotected
)

func (p *Provisioner) ownerKey(ctx context.Context) ([]byte, error) {
	if p.OwnerKey == nil {
		return nil, errors.New("the provisioner has no OWNER_KEY_SECRET_ARN: deploy it with the template, which sets it")
	}
	return p.OwnerKey(ctx)
}

// checkOwner decides from the secret's live tags whether owner manages it. legacy allows a
// secret made before ownership proofs existed (owner tag, no ptc:owner-mac): Update and Delete
// accept it so that existing stacks keep working, and Update then adds the proof and the
// policy. Create never accepts one: it made its own secrets with a proof.
func (p *Provisioner) checkOwner(ctx context.Context, st stack, secret *secretsmanager.DescribeSecretOutput, owner string, legacy bool) (ownership, error) {
	name := aws.ToString(secret.Name)
	var by, mac string
	var hasBy, hasMAC bool
	for _, t := range secret.Tags {
		switch aws.ToString(t.Key) {
		case ptcsecret.TagManagedBy:
			by, hasBy = aws.ToString(t.Value), true
		case ptcsecret.TagOwnerMAC:
			mac, hasMAC = aws.ToString(t.Value), true
		}
	}
	switch {
	case !hasBy:
		return foreign, notOursf("secret %s already exists and is not managed by ptc-credentials; it was left untouched (choose another SecretName)", name)
	case by != owner:
		return foreign, notOursf("secret %s is managed by %s, not by this resource; it was left untouched", name, by)
	case !hasMAC && legacy:
		// A proof is removed only with the policy out of the way (it denies untagging ptc:*
		// keys): a secret that carries any resource policy and no proof is not a legacy one.
		pol, err := p.SM.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: secret.ARN})
		if err != nil {
			return foreign, fmt.Errorf("reading the resource policy of %s: %w", name, err)
		}
		if aws.ToString(pol.ResourcePolicy) != "" {
			return foreign, notOursf("secret %s has a resource policy but no %s: its proof was removed; it was left untouched (restore the tag from CloudTrail, or delete the secret by hand)", name, ptcsecret.TagOwnerMAC)
		}
		return legacyOK, nil
	case !hasMAC:
		return foreign, notOursf("secret %s names this resource in %s but has no %s proving it; it was left untouched (someone else made it: choose another SecretName)", name, ptcsecret.TagManagedBy, ptcsecret.TagOwnerMAC)
	}
	key, err := p.ownerKey(ctx)
	if err != nil {
		return foreign, err
	}
	want := OwnerMAC(key, st.region, st.account, name, owner)
	if !strings.HasPrefix(mac, ownerMACVersion) || !hmac.Equal([]byte(mac), []byte(want)) {
		return foreign, notOursf("secret %s names this resource in %s, but its %s does not prove it (the tag was copied or forged); it was left untouched", name, ptcsecret.TagManagedBy, ptcsecret.TagOwnerMAC)
	}
	return ours, nil
}
