package emukit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigV4Error is why VerifySigV4 refused a request, with the error code AWS answers for it.
type SigV4Error struct {
	// Code is AWS's error code: MissingAuthenticationToken, IncompleteSignature,
	// InvalidClientTokenId or SignatureDoesNotMatch.
	Code    string
	Message string
}

func (e *SigV4Error) Error() string { return e.Code + ": " + e.Message }

// VerifySigV4 checks a request's AWS Signature Version 4 the way an AWS service does: the
// Authorization header names a known access key, the credential scope's service and Region are
// this endpoint's, and the signature recomputed over the headers it says it signed, the body
// and X-Amz-Date matches. secrets maps access key ids to secret keys. body is the request
// body, already read. It returns the access key id of a request that verifies.
//
// The recomputation uses the SDK's own signer, so a request signed by the SDK, botocore (the
// aws CLI) or any other correct signer verifies, and one whose body, headers or key differ
// does not.
func VerifySigV4(r *http.Request, body []byte, secrets map[string]string, service, region string) (string, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", &SigV4Error{"MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "", &SigV4Error{"IncompleteSignature", "Authorization header must use AWS4-HMAC-SHA256"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return "", &SigV4Error{"IncompleteSignature", "Authorization header lacks Credential, SignedHeaders or Signature"}
	}
	keyID, date, gotRegion, gotService := scope[0], scope[1], scope[2], scope[3]
	secret, ok := secrets[keyID]
	if !ok {
		return "", &SigV4Error{"InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if gotService != service || gotRegion != region {
		return "", &SigV4Error{"SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to %s/%s, not %s/%s", region, service, gotRegion, gotService)}
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signingTime.Format("20060102") != date {
		return "", &SigV4Error{"IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope's date"}
	}
	// Rebuild the request with exactly the headers the client signed, then sign it again.
	re, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return "", &SigV4Error{"IncompleteSignature", "request URL: " + err.Error()}
	}
	re.Host = r.Host
	re.ContentLength = 0 // the signer adds content-length only when it was signed (below)
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			re.ContentLength = int64(len(body))
		default:
			for _, v := range r.Header.Values(h) {
				re.Header.Add(h, v)
			}
		}
	}
	re.Header.Del("Authorization")
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash && h != "UNSIGNED-PAYLOAD" {
		return "", &SigV4Error{"SignatureDoesNotMatch", "X-Amz-Content-Sha256 does not match the body"}
	}
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true; o.DisableSessionToken = true })
	if err := signer.SignHTTP(context.Background(), creds, re, payloadHash, service, region, signingTime); err != nil {
		return "", &SigV4Error{"IncompleteSignature", "re-signing: " + err.Error()}
	}
	want := signatureOf(re.Header.Get("Authorization"))
	if want == "" || !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "", &SigV4Error{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."}
	}
	return keyID, nil
}

func signatureOf(auth string) string {
	_, sig, ok := strings.Cut(auth, "Signature=")
	if !ok {
		return ""
	}
	return sig
}

// ReadBody reads at most limit bytes of r's body, and fails on a larger one.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("request body too large")
	}
	return b, nil
}

// SigV4Region returns the Region of a request's SigV4 credential scope
// (Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, …),
// or "" when the request is not SigV4-signed. It checks nothing: it is how an emulator of
// several Regions behind one endpoint tells which Region a client meant, since real SDK clients
// differ only by the Region they sign for. VerifySigV4 is the check.
func SigV4Region(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return ""
	}
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	scope := strings.Split(strings.TrimSpace(cred), "/")
	if len(scope) != 5 {
		return ""
	}
	return scope[2]
}
