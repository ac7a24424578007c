package faults

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Outcome is what the faulted attempt did, before any retry.
type Outcome string

// Outcomes.
const (
	// Absorbed: every invocation of the attempt succeeded despite the fault (the product
	// retried the call, or the failure was one it tolerates).
	Absorbed Outcome = "absorbed"
	// Failed: an invocation reported failure (an error to Secrets Manager, FAILED to
	// CloudFormation); the retry then finished the job.
	Failed Outcome = "failed"
	// Died: the process died right after the call; the retry finished the job.
	Died Outcome = "died"
)

// scenarioInfo is what the dry run of a scenario learned.
type scenarioInfo struct {
	name  string
	doc   string
	calls []Call
	// invs names the invocations, by number.
	invs  map[int]string
	kinds []Kind
}

type cellResult struct {
	outcome Outcome
	status  string // "pass", "fail" or "skip"
	note    string
}

type cellKey struct {
	scenario string
	k        int
	kind     Kind
}

var matrix = struct {
	mu        sync.Mutex
	scenarios map[string]*scenarioInfo
	order     []string
	cells     map[cellKey]cellResult
}{scenarios: map[string]*scenarioInfo{}, cells: map[cellKey]cellResult{}}

func recordScenario(s *scenarioInfo) {
	matrix.mu.Lock()
	defer matrix.mu.Unlock()
	if _, ok := matrix.scenarios[s.name]; !ok {
		matrix.order = append(matrix.order, s.name)
	}
	matrix.scenarios[s.name] = s
}

// recordCell stores a case's result when the subtest ends.
func recordCell(t *testing.T, scenario string, k int, kind Kind, outcome *Outcome, note *string) {
	t.Cleanup(func() {
		r := cellResult{outcome: *outcome, status: "pass", note: *note}
		switch {
		case t.Skipped():
			r.status = "skip"
		case t.Failed():
			r.status = "fail"
		}
		matrix.mu.Lock()
		defer matrix.mu.Unlock()
		matrix.cells[cellKey{scenario, k, kind}] = r
	})
}

// scenarioOrder is the order of the scenarios in the matrix: one rotation per registry, then
// the provisioning scenarios, single-Region, then multi-Region.
var scenarioOrder = append(rotationScenarios(), "create", "create-timeout", "update-replace", "delete",
	"create-regions", "create-timeout-regions", "update-regions", "delete-regions")

func rotationScenarios() []string {
	var out []string
	for _, r := range Registries {
		out = append(out, "rotation-"+r)
	}
	return out
}

func rank(name string) int {
	if i := slices.Index(scenarioOrder, name); i >= 0 {
		return i
	}
	return len(scenarioOrder)
}

func writeMatrix(path string) error {
	matrix.mu.Lock()
	defer matrix.mu.Unlock()
	var b strings.Builder
	total, passed, known := 0, 0, 0
	order := slices.Clone(matrix.order)
	slices.SortStableFunc(order, func(a, b string) int { return rank(a) - rank(b) })
	for _, name := range order {
		s := matrix.scenarios[name]
		fmt.Fprintf(&b, "#### %s\n\n%s\n\n", s.name, s.doc)
		b.WriteString("| k | invocation | call |")
		for _, k := range s.kinds {
			fmt.Fprintf(&b, " %s |", k)
		}
		b.WriteString("\n|---:|---|---|")
		for range s.kinds {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, c := range s.calls {
			fmt.Fprintf(&b, "| %d | %s | `%s` |", c.N, s.invs[c.Inv], c.Op)
			for _, kind := range s.kinds {
				r, ok := matrix.cells[cellKey{name, c.N, kind}]
				total++
				switch {
				case !ok:
					b.WriteString(" not run |")
				case r.status == "pass":
					passed++
					fmt.Fprintf(&b, " ✓ %s |", r.outcome)
				case r.status == "skip":
					known++
					code, _, _ := strings.Cut(r.note, ":")
					fmt.Fprintf(&b, " known %s |", code)
				default:
					fmt.Fprintf(&b, " ✗ %s |", r.outcome)
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d cases: %d passed, %d known failures (skipped), %d failed.\n", total, passed, known, total-passed-known)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
