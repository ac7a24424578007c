// Package lambdaemu emulates the one AWS Lambda control-plane call `ptc doctor` makes,
// GetFunction, from the Lambda API reference (API_GetFunction): `GET
// /2015-03-31/functions/{FunctionName}` (restJson1), where FunctionName is a name, a function
// ARN or a partial ARN (`<account>:function:<name>`), optionally with a `:qualifier` or a
// `Qualifier` query parameter. A known function answers 200 `{"Configuration": {...}, "Code":
// {...}}`; an unknown one 404 with `X-Amzn-Errortype: ResourceNotFoundException` and `{"Type":
// "User", "message": "Function not found: <arn>"}`, which the SDK turns into
// *types.ResourceNotFoundException. Nothing else is served (404 UnknownOperationException).
// It is one account and Region: an ARN of another is refused as an invalid parameter (what the
// service answers there is not documented; the doctor treats any error but not-found alike).
package lambdaemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Server is the emulator, an http.Handler; its zero value is not usable: use New.
type Server struct {
	region, account string

	mu        sync.Mutex
	functions map[string]bool // by name
}

// New returns a Lambda in region and account with the given function names.
func New(region, account string, names ...string) *Server {
	s := &Server{region: region, account: account, functions: map[string]bool{}}
	for _, n := range names {
		s.functions[n] = true
	}
	return s
}

// Delete removes a function, as deleting its stack would.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.functions, name)
}

func (s *Server) arn(name string) string {
	return "arn:aws:lambda:" + s.region + ":" + s.account + ":function:" + name
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/")
	if !ok || r.Method != http.MethodGet || strings.Contains(rest, "/") {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "Unknown operation "+r.Method+" "+r.URL.Path)
		return
	}
	id, err := url.PathUnescape(rest)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "FunctionName is not a valid path segment")
		return
	}
	name, qualifier, err := s.parse(id)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", err.Error())
		return
	}
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		qualifier = q
	}
	s.mu.Lock()
	exists := s.functions[name]
	s.mu.Unlock()
	if !exists || (qualifier != "" && qualifier != "$LATEST") {
		shown := s.arn(name)
		if qualifier != "" {
			shown += ":" + qualifier
		}
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+shown)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"Configuration": map[string]any{"FunctionName": name, "FunctionArn": s.arn(name), "Runtime": "provided.al2023",
			"Handler": "bootstrap", "State": "Active", "LastUpdateStatus": "Successful", "Version": "$LATEST", "Architectures": []string{"arm64"}},
		"Code": map[string]any{"RepositoryType": "S3"},
	})
}

// parse accepts the three FunctionName forms and an optional qualifier suffix.
func (s *Server) parse(id string) (name, qualifier string, err error) {
	parts := strings.Split(id, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		if parts[3] != s.region || parts[4] != s.account {
			return "", "", fmt.Errorf("function %s is not in this account and Region (%s, %s)", id, s.account, s.region)
		}
		name = parts[6]
		if len(parts) == 8 {
			qualifier = parts[7]
		}
	case len(parts) >= 3 && parts[1] == "function":
		name = parts[2]
		if len(parts) == 4 {
			qualifier = parts[3]
		}
	case len(parts) <= 2:
		name = parts[0]
		if len(parts) == 2 {
			qualifier = parts[1]
		}
	default:
		return "", "", fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint", id)
	}
	if name == "" || len(name) > 64 {
		return "", "", fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint", id)
	}
	return name, qualifier, nil
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"Type": "User", "message": msg})
}
