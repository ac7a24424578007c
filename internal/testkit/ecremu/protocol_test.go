package ecremu

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The wire details a real client depends on, checked byte by byte.
func TestWireFormat(t *testing.T) {
	clock := &stepClock{t: time.Date(2025, 3, 1, 12, 0, 0, 250_000_000, time.UTC)}
	e := start(t, Options{Now: clock.Now})

	body, status := rawCall(t, e.hs.URL, OpCreate, `{"ecrRepositoryPrefix":"quay","upstreamRegistryUrl":"quay.io","someFutureMember":1}`)
	if status != http.StatusOK {
		t.Fatalf("create: %d %s", status, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if n, ok := raw["createdAt"].(float64); !ok || n != 1740830400.25 {
		t.Errorf("createdAt = %#v, want the epoch-seconds number 1740830400.25", raw["createdAt"])
	}
	if _, ok := raw["updatedAt"]; ok {
		t.Errorf("CreatePullThroughCacheRuleResponse has no updatedAt member: %s", body)
	}
	for k, want := range map[string]string{"ecrRepositoryPrefix": "quay", "upstreamRegistry": "quay", "registryId": DefaultAccountID, "upstreamRegistryUrl": "quay.io"} {
		if raw[k] != want {
			t.Errorf("%s = %#v, want %q", k, raw[k], want)
		}
	}

	body, _ = rawCall(t, e.hs.URL, OpDelete, `{"ecrRepositoryPrefix":"quay"}`)
	if strings.Contains(string(body), "upstreamRegistry\"") || strings.Contains(string(body), "updatedAt") {
		t.Errorf("DeletePullThroughCacheRuleResponse has neither upstreamRegistry nor updatedAt: %s", body)
	}
	body, _ = rawCall(t, e.hs.URL, OpDescribe, `{}`)
	if string(body) != `{"pullThroughCacheRules":[]}` {
		t.Errorf("empty describe = %s, want an empty list", body)
	}
}

func TestProtocolErrors(t *testing.T) {
	e := start(t, Options{})
	tests := []struct {
		name                string
		method, path        string
		target, contentType string
		auth                bool
		body                string
		wantStatus          int
		wantType            string // body __type
	}{
		{"missing Authorization", "POST", "/", TargetPrefix + OpDescribe, contentType, false, `{}`, 403, "MissingAuthenticationTokenException"},
		{"unknown ECR operation", "POST", "/", TargetPrefix + "CreateRepository", contentType, true, `{}`, 400, coralNS + "UnknownOperationException"},
		{"foreign target", "POST", "/", "secretsmanager.GetSecretValue", contentType, true, `{}`, 400, coralNS + "UnknownOperationException"},
		{"GET", "GET", "/", TargetPrefix + OpDescribe, contentType, true, ``, 404, coralNS + "UnknownOperationException"},
		{"wrong content type", "POST", "/", TargetPrefix + OpDescribe, "application/json", true, `{}`, 400, coralNS + "SerializationException"},
		{"malformed JSON", "POST", "/", TargetPrefix + OpDescribe, contentType, true, `{"maxResults":`, 400, coralNS + "SerializationException"},
		{"wrong member type", "POST", "/", TargetPrefix + OpDescribe, contentType, true, `{"maxResults":"ten"}`, 400, coralNS + "SerializationException"},
		{"required member missing", "POST", "/", TargetPrefix + OpCreate, contentType, true, `{"ecrRepositoryPrefix":"quay"}`, 400, "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.hs.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("X-Amz-Target", tc.target)
			req.Header.Set("Content-Type", tc.contentType)
			if tc.auth {
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tc.wantStatus || got.Type != tc.wantType || got.Message == "" {
				t.Errorf("got %d %q %q, want %d %q with a message", resp.StatusCode, got.Type, got.Message, tc.wantStatus, tc.wantType)
			}
			short := tc.wantType[strings.LastIndexByte(tc.wantType, '#')+1:]
			if h := resp.Header.Get("X-Amzn-Errortype"); !strings.HasPrefix(h, short+":") {
				t.Errorf("X-Amzn-Errortype = %q, want %s:<uri>", h, short)
			}
			if resp.Header.Get("X-Amzn-Requestid") == "" || resp.Header.Get("Content-Type") != contentType {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	if len(e.srv.Rules()) != 0 {
		t.Error("a refused request stored a rule")
	}
}
