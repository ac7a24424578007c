package localsm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Resource policies: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy and
// ValidateResourcePolicy, and the enforcement of a policy's Deny statements.
//
// What ValidateResourcePolicy checks here (its API reference names three checks: broad access,
// syntax, no lock-out): the JSON parses; Version, if present, is 2012-10-17 or 2008-10-17;
// Statement is an object or a non-empty array; each statement has Effect Allow or Deny, exactly
// one of Action/NotAction, a Principal or NotPrincipal (a resource policy names whom it is
// about), and only condition operators IAM knows; broad access is an Allow whose principal is
// "*" (or {"AWS": "*"}) with no Condition; lock-out is a Deny of Put/DeleteResourcePolicy (or a
// wildcard action) to "*" with no Condition, which no caller could ever lift. AWS's own
// reasoning (Zelkova) goes further; the CheckName values are localsm's, the reference lists
// none. The 20480-character limit is the parameter's (InvalidParameterException).
//
// Enforcement: Secrets Manager evaluates a secret's resource policy together with the caller's
// IAM policies, and an explicit Deny in either wins. localsm has no IAM, so it enforces only the
// Deny statements, and only for callers whose principal it knows (Options.Principals maps a
// SigV4 access key id to a principal ARN); requests signed with any other key are not checked.
// The request context it offers to conditions: aws:PrincipalArn, and aws:TagKeys for
// TagResource/UntagResource.

// MaxPolicyLength is the ResourcePolicy parameter's limit (1 to 20480 characters).
const MaxPolicyLength = 20480

// PolicyRequest is one request as a resource policy sees it.
type PolicyRequest struct {
	// Action is "secretsmanager:<Operation>".
	Action string
	// PrincipalARN is the caller (aws:PrincipalArn); "" when unknown.
	PrincipalARN string
	// ResourceARN is the secret's ARN.
	ResourceARN string
	// TagKeys are the tag keys in the request (aws:TagKeys), for TagResource/UntagResource.
	TagKeys []string
}

// ValidationError is one failed check, as ValidateResourcePolicy reports it.
type ValidationError struct {
	CheckName    string `json:"CheckName"`
	ErrorMessage string `json:"ErrorMessage"`
}

type statementJSON struct {
	Sid          string                     `json:"Sid"`
	Effect       string                     `json:"Effect"`
	Principal    json.RawMessage            `json:"Principal"`
	NotPrincipal json.RawMessage            `json:"NotPrincipal"`
	Action       json.RawMessage            `json:"Action"`
	NotAction    json.RawMessage            `json:"NotAction"`
	Resource     json.RawMessage            `json:"Resource"`
	NotResource  json.RawMessage            `json:"NotResource"`
	Condition    map[string]json.RawMessage `json:"Condition"`
}

// knownOperators are IAM's condition operators (without ForAnyValue:/ForAllValues: and
// IfExists).
var knownOperators = []string{
	"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
	"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
	"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
	"Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
}

// strs reads a JSON string or array of strings.
func strs(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, true
	}
	return nil, false
}

func parsePolicy(doc string) ([]statementJSON, error) {
	var top struct {
		Version   *string         `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(doc), &top); err != nil {
		return nil, fmt.Errorf("the policy is not a JSON object: %v", err)
	}
	if top.Version != nil && *top.Version != "2012-10-17" && *top.Version != "2008-10-17" {
		return nil, fmt.Errorf("the policy Version %q is not 2012-10-17 or 2008-10-17", *top.Version)
	}
	var sts []statementJSON
	if len(top.Statement) > 0 && top.Statement[0] == '{' {
		var one statementJSON
		if err := json.Unmarshal(top.Statement, &one); err != nil {
			return nil, fmt.Errorf("the policy Statement: %v", err)
		}
		sts = []statementJSON{one}
	} else if err := json.Unmarshal(top.Statement, &sts); err != nil || len(sts) == 0 {
		return nil, fmt.Errorf("the policy needs a Statement (an object or a non-empty array)")
	}
	for i, st := range sts {
		where := fmt.Sprintf("Statement %d", i+1)
		if st.Sid != "" {
			where += " (" + st.Sid + ")"
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, fmt.Errorf("%s: Effect must be Allow or Deny", where)
		}
		if (len(st.Action) == 0) == (len(st.NotAction) == 0) {
			return nil, fmt.Errorf("%s: exactly one of Action and NotAction", where)
		}
		if (len(st.Principal) == 0) == (len(st.NotPrincipal) == 0) {
			return nil, fmt.Errorf("%s: a resource policy statement needs exactly one of Principal and NotPrincipal", where)
		}
		for _, raw := range []json.RawMessage{st.Action, st.NotAction, st.Resource, st.NotResource} {
			if _, ok := strs(raw); !ok {
				return nil, fmt.Errorf("%s: Action and Resource are strings or arrays of strings", where)
			}
		}
		for op, raw := range st.Condition {
			base := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(op, "ForAnyValue:"), "ForAllValues:"), "IfExists")
			if !slices.Contains(knownOperators, base) {
				return nil, fmt.Errorf("%s: unknown condition operator %q", where, op)
			}
			var keys map[string]json.RawMessage
			if json.Unmarshal(raw, &keys) != nil {
				return nil, fmt.Errorf("%s: condition %s must map keys to values", where, op)
			}
		}
	}
	return sts, nil
}

// principalIsEveryone reports whether a Principal is "*" or {"AWS": "*"}.
func principalIsEveryone(raw json.RawMessage) bool {
	if s, ok := strs(raw); ok && len(s) == 1 && s[0] == "*" {
		return true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil {
		if s, ok := strs(m["AWS"]); ok && slices.Contains(s, "*") {
			return true
		}
	}
	return false
}

// ValidatePolicy runs ValidateResourcePolicy's checks on a document.
func ValidatePolicy(doc string) []ValidationError {
	sts, err := parsePolicy(doc)
	if err != nil {
		return []ValidationError{{CheckName: "SYNTAX", ErrorMessage: err.Error()}}
	}
	var out []ValidationError
	for i, st := range sts {
		if len(st.Condition) > 0 || len(st.Principal) == 0 || !principalIsEveryone(st.Principal) {
			continue
		}
		actions, _ := strs(st.Action)
		switch {
		case st.Effect == "Allow":
			out = append(out, ValidationError{CheckName: "BROAD_ACCESS", ErrorMessage: fmt.Sprintf("Statement %d allows every principal with no condition", i+1)})
		case slices.ContainsFunc(actions, func(a string) bool {
			return actionMatches(a, "secretsmanager:PutResourcePolicy") || actionMatches(a, "secretsmanager:DeleteResourcePolicy")
		}):
			out = append(out, ValidationError{CheckName: "LOCKOUT", ErrorMessage: fmt.Sprintf("Statement %d denies every principal changing this policy with no condition: nobody could lift it", i+1)})
		}
	}
	return out
}

// broad reports whether a policy that passed syntax allows broad access (BlockPublicPolicy).
func broad(doc string) bool {
	return slices.ContainsFunc(ValidatePolicy(doc), func(e ValidationError) bool { return e.CheckName == "BROAD_ACCESS" })
}

func actionMatches(pattern, action string) bool {
	ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(action))
	return ok
}

func likeMatch(pattern, v string) bool {
	// IAM's StringLike: * any run, ? one character; path.Match would stop * at "/".
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString("\x00")
		default:
			b.WriteRune(r)
		}
	}
	return wildcard(b.String(), v)
}

func wildcard(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case 0:
			for i := len(s); i >= 0; i-- {
				if wildcard(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

// condition evaluates one operator over one key. values are the request's values for the key
// (nil: absent).
func condition(op string, values, want []string, present bool) bool {
	set := ""
	if rest, ok := strings.CutPrefix(op, "ForAnyValue:"); ok {
		set, op = "any", rest
	} else if rest, ok := strings.CutPrefix(op, "ForAllValues:"); ok {
		set, op = "all", rest
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	if op == "Null" {
		return slices.Contains(want, fmt.Sprint(!present))
	}
	negated := strings.Contains(op, "Not")
	match := func(v string) bool {
		for _, w := range want {
			var m bool
			switch op {
			case "StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals":
				m = v == w
			case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
				m = strings.EqualFold(v, w)
			case "StringLike", "StringNotLike", "ArnLike", "ArnNotLike":
				m = likeMatch(w, v)
			default:
				return false // operators localsm does not evaluate never match
			}
			if m {
				return !negated
			}
		}
		return negated
	}
	switch set {
	case "any":
		return slices.ContainsFunc(values, match)
	case "all":
		return !slices.ContainsFunc(values, func(v string) bool { return !match(v) })
	}
	if !present {
		return ifExists || negated
	}
	return match(values[0])
}

// Denies reports whether a Deny statement of the policy applies to the request (an explicit
// deny, which no Allow anywhere overrides), and names it.
func Denies(doc string, req PolicyRequest) (bool, string, error) {
	sts, err := parsePolicy(doc)
	if err != nil {
		return false, "", err
	}
	ctx := map[string][]string{}
	if req.PrincipalARN != "" {
		ctx["aws:principalarn"] = []string{req.PrincipalARN}
	}
	if strings.HasSuffix(req.Action, ":TagResource") || strings.HasSuffix(req.Action, ":UntagResource") {
		ctx["aws:tagkeys"] = req.TagKeys
	}
	for i, st := range sts {
		if st.Effect != "Deny" || len(st.Principal) == 0 || !principalIsEveryone(st.Principal) {
			continue // localsm knows the caller only by ARN; it applies Deny-to-everyone statements
		}
		actions, _ := strs(st.Action)
		if !slices.ContainsFunc(actions, func(a string) bool { return actionMatches(a, req.Action) }) {
			continue
		}
		resources, _ := strs(st.Resource)
		if len(resources) > 0 && !slices.ContainsFunc(resources, func(r string) bool { return likeMatch(r, req.ResourceARN) }) {
			continue
		}
		all := true
		for op, raw := range st.Condition {
			var keys map[string]json.RawMessage
			_ = json.Unmarshal(raw, &keys)
			for k, v := range keys {
				want, _ := strs(v)
				values, present := ctx[strings.ToLower(k)]
				if !condition(op, values, want, present) {
					all = false
				}
			}
		}
		if all {
			name := st.Sid
			if name == "" {
				name = fmt.Sprintf("statement %d", i+1)
			}
			return true, name, nil
		}
	}
	return false, "", nil
}

// --- the four operations ---

type policyIn struct {
	SecretId          *string
	ResourcePolicy    *string
	BlockPublicPolicy *bool
}

type policyOut struct {
	ARN            string  `json:"ARN"`
	Name           string  `json:"Name"`
	ResourcePolicy *string `json:"ResourcePolicy,omitempty"`
}

func checkPolicyParam(p *string) *apiError {
	if p == nil {
		return errParam("ResourcePolicy is required.")
	}
	if len(*p) < 1 || len(*p) > MaxPolicyLength {
		return errParam("ResourcePolicy must be 1 to %d characters long.", MaxPolicyLength)
	}
	return nil
}

// withPolicySecret is what the three resource-policy calls share (withSecret).
func (s *Server) withPolicySecret(body []byte, check func(policyIn) *apiError, act func(*secret) (any, *apiError)) (any, *apiError) {
	var c func(*policyIn) *apiError
	if check != nil {
		c = func(in *policyIn) *apiError { return check(*in) }
	}
	return withSecret(s, body, func(in *policyIn) *string { return in.SecretId }, c,
		func(_ *policyIn, sec *secret) (any, *apiError) { return act(sec) })
}

// withSecret is what the calls that name one secret share: decode the input into In, check
// its SecretId, run check (the call's own parameter checks, before the secret is looked up, as
// AWS orders its errors; nil: none), then act on the secret under the lock.
func withSecret[In any](s *Server, body []byte, secretID func(*In) *string, check func(*In) *apiError, act func(*In, *secret) (any, *apiError)) (any, *apiError) {
	var in In
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(secretID(&in))
	if e != nil {
		return nil, e
	}
	if check != nil {
		if e := check(&in); e != nil {
			return nil, e
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	return act(&in, sec)
}

func (s *Server) putResourcePolicy(_ context.Context, body []byte) (any, *apiError) {
	var policy string
	return s.withPolicySecret(body, func(in policyIn) *apiError {
		if e := checkPolicyParam(in.ResourcePolicy); e != nil {
			return e
		}
		if _, err := parsePolicy(*in.ResourcePolicy); err != nil {
			return errf("MalformedPolicyDocumentException", "The resource policy has syntax errors: %s", err.Error())
		}
		if in.BlockPublicPolicy != nil && *in.BlockPublicPolicy && broad(*in.ResourcePolicy) {
			return errf("PublicPolicyException", "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent broad access to the secret.")
		}
		policy = *in.ResourcePolicy
		return nil
	}, func(sec *secret) (any, *apiError) {
		if sec.isDeleted() {
			return nil, errDeleted()
		}
		sec.policy = policy
		return policyOut{ARN: sec.arn, Name: sec.name}, nil
	})
}

func (s *Server) getResourcePolicy(_ context.Context, body []byte) (any, *apiError) {
	return s.withPolicySecret(body, nil, func(sec *secret) (any, *apiError) {
		out := policyOut{ARN: sec.arn, Name: sec.name}
		if sec.policy != "" {
			pol := sec.policy
			out.ResourcePolicy = &pol
		}
		return out, nil
	})
}

func (s *Server) deleteResourcePolicy(_ context.Context, body []byte) (any, *apiError) {
	return s.withPolicySecret(body, nil, func(sec *secret) (any, *apiError) {
		sec.policy = ""
		return policyOut{ARN: sec.arn, Name: sec.name}, nil
	})
}

type validateOut struct {
	PolicyValidationPassed bool              `json:"PolicyValidationPassed"`
	ValidationErrors       []ValidationError `json:"ValidationErrors"`
}

func (s *Server) validateResourcePolicy(_ context.Context, body []byte) (any, *apiError) {
	var in policyIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkPolicyParam(in.ResourcePolicy); e != nil {
		return nil, e
	}
	if in.SecretId != nil {
		id, e := checkSecretID(in.SecretId)
		if e != nil {
			return nil, e
		}
		s.mu.Lock()
		sec := s.lookup(id)
		s.mu.Unlock()
		if sec == nil {
			return nil, errNotFound()
		}
	}
	return ValidateOutput(*in.ResourcePolicy), nil
}

// ValidateOutput is ValidateResourcePolicy's answer for a document (without the SecretId
// lookup): what the moto gate in testenv answers for moto, which lacks the operation.
func ValidateOutput(doc string) any {
	errs := ValidatePolicy(doc)
	return validateOut{PolicyValidationPassed: len(errs) == 0, ValidationErrors: append([]ValidationError{}, errs...)}
}

// WriteValidateResponse answers an http request with ValidateOutput(doc), framed as localsm
// frames every answer.
func WriteValidateResponse(w http.ResponseWriter, doc string) {
	b, _ := marshal(ValidateOutput(doc))
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// --- enforcement ---

// enforce refuses a request an explicit Deny of the secret's resource policy covers. It runs
// before the operation, under no lock of the caller's.
func (s *Server) enforce(r *http.Request, op string, body []byte) *apiError {
	principal := s.principalOf(r)
	if principal == "" {
		return nil
	}
	var in struct {
		SecretId *string
		Tags     []tagJSON
		TagKeys  []string
	}
	if json.Unmarshal(body, &in) != nil || in.SecretId == nil {
		return nil // the operation itself answers for a bad body
	}
	s.mu.Lock()
	sec := s.lookup(*in.SecretId)
	var pol, arn string
	if sec != nil {
		pol, arn = sec.policy, sec.arn
	}
	s.mu.Unlock()
	if pol == "" {
		return nil
	}
	req := PolicyRequest{Action: "secretsmanager:" + op, PrincipalARN: principal, ResourceARN: arn, TagKeys: in.TagKeys}
	for _, t := range in.Tags {
		if t.Key != nil {
			req.TagKeys = append(req.TagKeys, *t.Key)
		}
	}
	if denied, _, _ := Denies(pol, req); denied {
		return &apiError{Type: "AccessDeniedException", Status: http.StatusBadRequest,
			Message: fmt.Sprintf("User: %s is not authorized to perform: secretsmanager:%s on resource: %s with an explicit deny in a resource-based policy", principal, op, *in.SecretId)}
	}
	return nil
}

// principalOf maps the request's SigV4 access key id to a principal (Options.Principals).
// Signatures are not checked (see the package doc); the key id is only read.
func (s *Server) principalOf(r *http.Request) string {
	if len(s.opts.Principals) == 0 {
		return ""
	}
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return s.opts.Principals[key]
}
