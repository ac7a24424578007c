package templatecheck

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

var (
	loadedMu sync.Mutex
	loaded   = map[string]map[string]any{}
)

// loadRel loads a template by its path relative to the repository root. Each file is parsed
// once per test binary; every caller gets its own deep copy, free to mutate.
func loadRel(t *testing.T, rel string) map[string]any {
	t.Helper()
	loadedMu.Lock()
	defer loadedMu.Unlock()
	doc, ok := loaded[rel]
	if !ok {
		var err error
		doc, err = Load(filepath.Join(repoRoot(t), rel))
		if err != nil {
			t.Fatal(err)
		}
		loaded[rel] = doc
	}
	return clone(t, doc)
}

// clone deep-copies a loaded template so a test can mutate it.
func clone(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// get walks maps by key; it returns nil when any step is missing or not a map.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// mapAt is get for a value that should be a map (nil map when it is not).
func mapAt(v any, keys ...string) map[string]any {
	m, _ := get(v, keys...).(map[string]any)
	return m
}

// list returns v as a list: IAM's Action and Resource may be one string or a list of them.
func list(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

// render turns a value into one comparable string: a literal stays itself, Fn::Sub shows its
// template, Ref X becomes ${X} and GetAtt A.B becomes ${A.B} — the same spelling Fn::Sub uses,
// so "!GetAtt RotatorFunction.Arn" and "!Sub ${RotatorFunction.Arn}" compare equal. Anything
// else is shown as JSON in angle brackets so it never equals an expected ARN by accident.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case map[string]any:
		if len(x) == 1 {
			if s, ok := x["Fn::Sub"].(string); ok {
				return s
			}
			if l, ok := x["Fn::Sub"].([]any); ok && len(l) == 2 && len(mapAt(l[1])) == 0 {
				if s, ok := l[0].(string); ok {
					return s
				}
			}
			if s, ok := x["Ref"].(string); ok {
				return "${" + s + "}"
			}
			if l, ok := x["Fn::GetAtt"].([]any); ok && len(l) == 2 {
				return fmt.Sprintf("${%v.%v}", l[0], l[1])
			}
		}
	}
	b, _ := json.Marshal(v)
	return "<" + string(b) + ">"
}

// renderAll renders each element of list(v).
func renderAll(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, render(x))
	}
	return out
}

// resourcesOfType lists the logical ids of the template's resources of one type, sorted.
func resourcesOfType(doc map[string]any, typ string) []string {
	var ids []string
	for id, r := range mapAt(doc, "Resources") {
		if get(r, "Type") == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// statement is one IAM policy statement with where it came from.
type statement struct {
	where     string // role/policy logical id, policy name and Sid, for messages
	effect    string
	actions   []string
	resources []string // rendered
	raw       map[string]any
}

// roleStatements returns the statements of every inline policy of an AWS::IAM::Role.
func roleStatements(doc map[string]any, roleID string) []statement {
	var out []statement
	for _, p := range list(get(doc, "Resources", roleID, "Properties", "Policies")) {
		name := render(get(p, "PolicyName"))
		for i, s := range list(get(p, "PolicyDocument", "Statement")) {
			sm, _ := s.(map[string]any)
			where := fmt.Sprintf("%s/%s/%v", roleID, name, get(sm, "Sid"))
			if get(sm, "Sid") == nil {
				where = fmt.Sprintf("%s/%s/#%d", roleID, name, i)
			}
			st := statement{where: where, effect: render(get(sm, "Effect")), raw: sm}
			for _, a := range list(get(sm, "Action")) {
				st.actions = append(st.actions, render(a))
			}
			st.resources = renderAll(get(sm, "Resource"))
			out = append(out, st)
		}
	}
	return out
}

// isReadOnly says whether an IAM action only reads, by the verb convention the project's rule
// uses: Describe*, Get*, List* and Validate* (ECR's Validate reads the rule and logs in upstream).
func isReadOnly(action string) bool {
	_, name, _ := strings.Cut(action, ":")
	for _, p := range []string{"Describe", "Get", "List", "Validate"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// repoRoot finds the module root (the directory holding go.mod) above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
