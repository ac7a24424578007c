package awsenv

import (
	"context"
	"strings"
	"testing"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestConfigFromLambdaVariables(t *testing.T) {
	cfg, err := Config(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDPLANTED", "AWS_SECRET_ACCESS_KEY": "planted-secret-key", "AWS_SESSION_TOKEN": "planted-session",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" {
		t.Errorf("Region = %q", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "AKIDPLANTED" || creds.SecretAccessKey != "planted-secret-key" || creds.SessionToken != "planted-session" {
		t.Errorf("credentials not taken from the environment: %+v", creds.AccessKeyID)
	}
}

func TestConfigFallsBackToDefaultRegion(t *testing.T) {
	cfg, err := Config(env(map[string]string{"AWS_DEFAULT_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}))
	if err != nil || cfg.Region != "us-west-2" {
		t.Fatalf("Config = %q, %v", cfg.Region, err)
	}
}

func TestConfigNamesEveryMissingVariableAndNoValue(t *testing.T) {
	_, err := Config(env(map[string]string{"AWS_ACCESS_KEY_ID": "AKIDPLANTED"}))
	if err == nil {
		t.Fatal("no error without Region and secret key")
	}
	for _, want := range []string{"AWS_REGION", "AWS_SECRET_ACCESS_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "AKIDPLANTED") {
		t.Errorf("error %q quotes a credential", err)
	}
}

func TestEndpointOverrides(t *testing.T) {
	e := env(map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL": "http://127.0.0.1:9999"})
	if got, err := Endpoint(e, "SECRETS_MANAGER"); err != nil || got != "http://127.0.0.1:4566" {
		t.Errorf("service override = %q, %v", got, err)
	}
	if got, err := Endpoint(e, "ECR"); err != nil || got != "http://127.0.0.1:9999" {
		t.Errorf("global override = %q, %v", got, err)
	}
	if got, err := Endpoint(env(nil), "ECR"); err != nil || got != "" {
		t.Errorf("no override = %q, %v", got, err)
	}
	if _, err := Endpoint(env(map[string]string{"AWS_ENDPOINT_URL_ECR": "not a url"}), "ECR"); err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_ECR") {
		t.Errorf("bad override: error %v does not name the variable", err)
	}
}
