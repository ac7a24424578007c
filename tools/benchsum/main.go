// Command benchsum reads `go test -bench` output (several -count runs) on stdin, echoes it to
// stderr, and prints one Markdown table per top-level benchmark: for every sub-benchmark and
// metric, the median over the runs with min–max when they differ. Times are shown in ms and
// bytes in KiB.
//
// go test -run '^$' -bench . -count 5 ./tests/bench | go run ./tools/benchsum
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
)

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// order lists the metrics first that every table shares; others follow alphabetically.
var order = []string{"ns/op", "cpu-ns/op", "moto-cpu-ns/op", "B/op", "allocs/op", "sm-calls/op", "up-calls/op", "up-api/op", "up-reg/op"}

func main() {
	if err := run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchsum:", err)
		os.Exit(1)
	}
}

type series struct {
	name   string
	values map[string][]float64
}

func run(in io.Reader, out, echo io.Writer) error {
	var all []*series
	byName := map[string]*series{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fmt.Fprintln(echo, sc.Text())
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		s := byName[m[1]]
		if s == nil {
			s = &series{name: m[1], values: map[string][]float64{}}
			byName[m[1]] = s
			all = append(all, s)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			s.values[f[i+1]] = append(s.values[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	groups := map[string][]*series{}
	var groupOrder []string
	for _, s := range all {
		top, _, _ := strings.Cut(s.name, "/")
		if _, ok := groups[top]; !ok {
			groupOrder = append(groupOrder, top)
		}
		groups[top] = append(groups[top], s)
	}
	for _, g := range groupOrder {
		units := map[string]bool{}
		for _, s := range groups[g] {
			for u := range s.values {
				units[u] = true
			}
		}
		var cols []string
		for _, u := range order {
			if units[u] {
				cols = append(cols, u)
				delete(units, u)
			}
		}
		var rest []string
		for u := range units {
			rest = append(rest, u)
		}
		slices.Sort(rest)
		cols = append(cols, rest...)
		fmt.Fprintf(out, "\n### %s\n\n| benchmark | runs |", g)
		for _, c := range cols {
			fmt.Fprintf(out, " %s |", header(c))
		}
		fmt.Fprint(out, "\n| --- | ---: |")
		for range cols {
			fmt.Fprint(out, " ---: |")
		}
		fmt.Fprintln(out)
		for _, s := range groups[g] {
			name := strings.TrimPrefix(strings.TrimPrefix(s.name, g), "/")
			fmt.Fprintf(out, "| %s | %d |", name, len(s.values["ns/op"]))
			for _, c := range cols {
				fmt.Fprintf(out, " %s |", cell(c, s.values[c]))
			}
			fmt.Fprintln(out)
		}
	}
	return nil
}

func header(unit string) string {
	switch {
	case strings.HasSuffix(unit, "ns/op"):
		return strings.TrimSuffix(unit, "ns/op") + "ms/op"
	case unit == "B/op":
		return "KiB/op"
	}
	return unit
}

func cell(unit string, xs []float64) string {
	if len(xs) == 0 {
		return ""
	}
	scale, f := 1.0, "%.2f"
	switch {
	case strings.HasSuffix(unit, "ns/op"):
		scale, f = 1e-6, "%.2f"
	case unit == "B/op":
		scale, f = 1.0/1024, "%.0f"
	case unit == "allocs/op":
		f = "%.0f"
	}
	for i := range xs {
		xs[i] *= scale
	}
	s := benchkit.Summarize(xs)
	if fmt.Sprintf(f, s.Min) == fmt.Sprintf(f, s.Max) {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Median, s.Min, s.Max)
}
