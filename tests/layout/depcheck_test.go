// Package layout pins the direction of every import arrow between the project's packages, in
// the spirit of go-containerregistry's pkg/registry/depcheck_test.go: over `go list -deps`, so
// an arrow through any number of packages counts.
package layout

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ptc-credentials/ptc-credentials"

// rule is one forbidden arrow: no package matching from may depend, directly or not, on a
// package matching to.
type rule struct {
	why      string
	from, to func(pkg string) bool
}

func under(prefix string) func(string) bool {
	return func(p string) bool { return p == module+"/"+prefix || strings.HasPrefix(p, module+"/"+prefix+"/") }
}

func is(path string) func(string) bool { return func(p string) bool { return p == module+"/"+path } }

// product reports whether pkg ships: the functions, the CLI and everything under internal/
// but the test kit.
func product(pkg string) bool {
	return under("functions")(pkg) || under("cmd")(pkg) ||
		(under("internal")(pkg) && !under("internal/testkit")(pkg))
}

// rules are the arrows that must not exist.
var rules = []rule{
	{"a shipped package must not link the test kit (emulators, moto harness, local cloud)", product, under("internal/testkit")},
	{"a shipped package must not depend on the developer commands", product, under("tools")},
	{"a shipped package must not depend on the tests", product, under("tests")},
	{"the Lambda bootstraps must not link the CLI's SDK config chain (1.9 MB, docs/dependencies.md) or Lambda client, nor a command", under("functions"), func(p string) bool {
		return under("cmd")(p) || p == "github.com/aws/aws-sdk-go-v2/config" || strings.HasPrefix(p, "github.com/aws/aws-sdk-go-v2/config/") ||
			p == "github.com/aws/aws-sdk-go-v2/service/lambda"
	}},
	{"only the ptc command links the operator CLI's logic", func(p string) bool { return product(p) && !under("cmd")(p) && !under("internal/operator")(p) }, under("internal/operator")},
	{"upstreams are registry clients: they must not know the rotation engine", under("internal/upstream"), under("internal/rotation")},
	{"upstreams are registry clients: they must not know the provisioner", under("internal/upstream"), under("internal/provision")},
	{"upstreams are registry clients: they must not know the custom-resource protocol", under("internal/upstream"), under("internal/customresource")},
	{"the rotation engine must not depend on the provisioner", under("internal/rotation"), under("internal/provision")},
	{"the provisioner must not depend on the rotation engine", under("internal/provision"), under("internal/rotation")},
	{"the rotation engine must not know the custom-resource protocol", under("internal/rotation"), under("internal/customresource")},
	{"internal/kit is the bottom of the tree: it imports nothing of this project", is("internal/kit"), func(p string) bool { return strings.HasPrefix(p, module+"/") }},
	{"internal/awsenv reads the environment and nothing else of this project", is("internal/awsenv"), func(p string) bool { return strings.HasPrefix(p, module+"/") }},
	{"internal/webidentity asks STS for a token and knows nothing else of this project", is("internal/webidentity"), func(p string) bool { return strings.HasPrefix(p, module+"/") }},
	{"cfnauth is the gate in front of the engines: it must not depend on them", under("internal/cfnauth"), func(p string) bool {
		return under("internal/provision")(p) || under("internal/rotation")(p) || under("internal/upstream")(p)
	}},
	{"the secret document is the bottom of the product: it imports nothing of the engines or upstreams", is("internal/ptcsecret"), func(p string) bool {
		return under("internal/upstream")(p) || under("internal/rotation")(p) || under("internal/provision")(p) || under("internal/customresource")(p)
	}},
}

// violations lists every dependency of graph (package -> its transitive non-test
// dependencies) that a rule forbids, one line each, sorted.
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, deps := range graph {
		for _, r := range rules {
			if !r.from(pkg) {
				continue
			}
			for _, d := range deps {
				if r.to(d) && d != pkg {
					out = append(out, fmt.Sprintf("%s -> %s: %s", strings.TrimPrefix(pkg, module+"/"), strings.TrimPrefix(d, module+"/"), r.why))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// listGraph asks the go command for every package of the module and its transitive non-test
// dependencies.
func listGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Deps", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		graph[p.ImportPath] = p.Deps
	}
	if len(graph) < 10 {
		t.Fatalf("go list found only %d packages; is the working directory the module?", len(graph))
	}
	return graph
}

func TestImportDirection(t *testing.T) {
	graph := listGraph(t)
	for _, v := range violations(graph) {
		t.Error(v)
	}
	// The rules must be about packages that exist: a rename would silently disarm them.
	for _, want := range []string{"functions/rotator", "functions/provisioner", "internal/rotation", "internal/provision",
		"internal/upstream", "internal/customresource", "internal/kit", "internal/ptcsecret", "internal/testkit/testenv",
		"internal/awsenv", "internal/cfnauth", "internal/operator", "cmd/ptc"} {
		if _, ok := graph[module+"/"+want]; !ok {
			t.Errorf("package %s is gone: update the rules in this file", want)
		}
	}
}

// TestRulesCatchForbiddenArrows plays the engineer who adds a forbidden import: each arrow
// below must be reported, and the allowed ones must not.
func TestRulesCatchForbiddenArrows(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	forbidden := map[string][]string{
		m("functions/rotator"):           {m("internal/rotation"), m("internal/testkit/dockerhubemu")},
		m("internal/provision"):          {m("internal/upstream"), m("internal/rotation")},
		m("internal/rotation"):           {m("internal/provision"), m("internal/operator")},
		m("internal/upstream/gitlab"):    {m("internal/upstream/httpapi"), m("internal/customresource")},
		m("internal/upstream/acr"):       {m("internal/rotation")},
		m("internal/kit"):                {m("internal/ptcsecret")},
		m("internal/customresource"):     {m("tools/demo")},
		m("internal/registryauth"):       {m("tests/e2e")},
		m("internal/ptcsecret"):          {m("internal/upstream")},
		m("internal/upstream/dockerhub"): {m("internal/provision")},
		m("internal/awsenv"):             {m("internal/kit")},
		m("internal/cfnauth"):            {m("internal/provision")},
		m("functions/provisioner"):       {m("internal/operator"), "github.com/aws/aws-sdk-go-v2/config"},
	}
	got := violations(forbidden)
	if len(got) != 15 {
		t.Errorf("want 15 violations (one per forbidden arrow), got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	allowed := map[string][]string{
		m("functions/provisioner"):       {m("internal/provision"), m("internal/customresource"), m("internal/upstream/providers")},
		m("internal/testkit/localcloud"): {m("internal/rotation"), m("internal/provision"), m("internal/testkit/localsm")},
		m("tests/faults"):                {m("internal/testkit/testenv")},
		m("tools/demo"):                  {m("internal/testkit/localcloud")},
		m("internal/rotation"):           {m("internal/upstream"), m("internal/kit")},
		m("internal/upstream/dockerhub"): {m("internal/upstream/httpapi"), m("internal/ptcsecret")},
		m("cmd/ptc"):                     {m("internal/operator"), "github.com/aws/aws-sdk-go-v2/config"},
		m("internal/operator"):           {m("internal/rotation"), m("internal/registryauth"), m("internal/upstream/providers")},
	}
	if got := violations(allowed); len(got) != 0 {
		t.Errorf("allowed arrows reported:\n%s", strings.Join(got, "\n"))
	}
}
