package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// rotatorFunctionName is the name the rotation function has in moto's Lambda backend.
const rotatorFunctionName = "ptc-rotator"

// registerRotatorInMoto makes moto's Secrets Manager accept the rotator's ARN.
//
// The provisioner's Create calls RotateSecret(RotationLambdaARN, RotateImmediately=false), and
// moto 5.2.1 (secretsmanager/models.py, rotate_secret) looks that ARN up in its own Lambda
// backend, answering ResourceNotFoundException when the function is unknown. So the function is
// registered there, backed by a stub zip, with moto's Docker-free Lambda backend switched on
// (POST /moto-api/config {"lambda": {"use_docker": false}}; awslambda/utils.py get_backend then
// picks awslambda_simple, whose invoke runs nothing and returns the event body). RotateSecret
// then succeeds without running anything, and the tests drive each rotation step themselves
// through the real rotator under aws-lambda-rie, as Secrets Manager would.
//
// moto needs the execution role to exist in its IAM backend (awslambda/models.py put_function),
// so that is created first. moto has no aws-sdk-go-v2 Lambda or IAM client in go.mod, so both
// calls are made over HTTP, SigV4-signed (moto routes a request to a service by the signature's
// credential scope).
func registerRotatorInMoto(endpoint string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.Post(endpoint+"/moto-api/config", "application/json", strings.NewReader(`{"lambda": {"use_docker": false}}`))
	if err != nil {
		return "", fmt.Errorf("configuring moto's Lambda backend: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || !strings.Contains(string(body), `"use_docker": false`) {
		return "", fmt.Errorf("configuring moto's Lambda backend: status %d, config %s", resp.StatusCode, body)
	}

	role := "ptc-e2e-rotator-role"
	form := url.Values{
		"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {role},
		"AssumeRolePolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`},
	}
	if _, err := signedCall(ctx, endpoint, "iam", http.MethodPost, "/", "application/x-www-form-urlencoded", []byte(form.Encode())); err != nil {
		return "", fmt.Errorf("creating IAM role %s: %w", role, err)
	}

	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	w, _ := zw.Create("bootstrap")
	_, _ = w.Write([]byte("#!/bin/sh\n# moto never runs this: the tests invoke the real rotator under aws-lambda-rie\nexit 1\n"))
	if err := zw.Close(); err != nil {
		return "", err
	}
	fn, _ := json.Marshal(map[string]any{
		"FunctionName":  rotatorFunctionName,
		"Runtime":       "provided.al2023",
		"Handler":       "bootstrap",
		"Architectures": []string{"arm64"},
		"Role":          "arn:aws:iam::" + testenv.AccountID + ":role/" + role,
		"Code":          map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(zipBuf.Bytes())},
	})
	out, err := signedCall(ctx, endpoint, "lambda", http.MethodPost, "/2015-03-31/functions", "application/json", fn)
	if err != nil {
		return "", fmt.Errorf("creating Lambda function %s: %w", rotatorFunctionName, err)
	}
	var created struct{ FunctionArn string }
	if err := json.Unmarshal(out, &created); err != nil || created.FunctionArn == "" {
		return "", fmt.Errorf("creating Lambda function %s: no FunctionArn in %.200s", rotatorFunctionName, out)
	}
	return created.FunctionArn, nil
}

// signedCall sends one SigV4-signed request with the test credentials and returns the body of a
// 2xx answer.
func signedCall(ctx context.Context, endpoint, service, method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, endpoint+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	sum := sha256.Sum256(body)
	creds, err := testenv.AWSConfig().Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, testenv.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("status %d: %.300s", resp.StatusCode, out)
	}
	return out, nil
}
