// Command binsize prints, as Markdown, the size of each bootstrap for linux/arm64 and
// linux/amd64 built exactly as the Makefile builds it (CGO off, -tags lambda.norpc -trimpath
// -ldflags '-s -w'), raw and as the Lambda zip; what each module contributes (symbol sizes of a
// -ldflags=-w build, which keeps the symbol table).
//
// Run from the repository: go run ./tools/binsize
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
)

// budget is docs/design.md §9: 10 MiB per bootstrap (linux/arm64).
const budget = 10 << 20

func main() {
	top := flag.Int("top", 14, "modules listed per binary before the rest are summed")
	flag.Parse()
	if err := run(*top); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

type target struct{ name, pkg string }

func run(top int) error {
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ptc-binsize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	targets := []target{{"rotator", "./functions/rotator"}, {"provisioner", "./functions/provisioner"}}

	fmt.Println("## Bootstrap sizes (bytes)")
	fmt.Println()
	fmt.Println("| binary | linux/arm64 | arm64 zip | budget used (arm64) | headroom to 10 MiB | linux/amd64 | amd64 zip |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, t := range targets {
		sizes := map[string][2]int64{}
		for _, arch := range []string{"arm64", "amd64"} {
			out := filepath.Join(tmp, arch, filepath.Base(t.pkg))
			if err := benchkit.Build(root, t.pkg, "linux", arch, out, benchkit.BuildFlags); err != nil {
				return err
			}
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			z, err := benchkit.ZipSize(out)
			if err != nil {
				return err
			}
			sizes[arch] = [2]int64{st.Size(), z}
		}
		a, d := sizes["arm64"], sizes["amd64"]
		fmt.Printf("| %s | %s | %s | %.1f %% | %s | %s | %s |\n", t.name, comma(a[0]), comma(a[1]),
			100*float64(a[0])/budget, comma(budget-a[0]), comma(d[0]), comma(d[1]))
	}

	for _, t := range targets {
		out := filepath.Join(tmp, "sym", t.name)
		flags := []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-w"}
		if err := benchkit.Build(root, t.pkg, "linux", "arm64", out, flags); err != nil {
			return err
		}
		mods, pclntab, file, err := benchkit.SymbolBreakdown(out)
		if err != nil {
			return err
		}
		var total int64
		for _, m := range mods {
			total += m.Text + m.Data
		}
		fmt.Printf("\n## What each module contributes: %s, linux/arm64\n\n", t.name)
		fmt.Printf("Symbol sizes of a `-ldflags=-w` build (%s bytes; symbols cover %s of them, .gopclntab %s more, which grows with code).\n\n",
			comma(file), comma(total), comma(pclntab))
		fmt.Println("| module | code | data | total | share of symbols |")
		fmt.Println("| --- | ---: | ---: | ---: | ---: |")
		var rest benchkit.ModuleSize
		for i, m := range mods {
			if i >= top {
				rest.Text += m.Text
				rest.Data += m.Data
				continue
			}
			fmt.Printf("| %s | %s | %s | %s | %.1f %% |\n", m.Module, comma(m.Text), comma(m.Data), comma(m.Text+m.Data), 100*float64(m.Text+m.Data)/float64(total))
		}
		if rest.Text+rest.Data > 0 {
			fmt.Printf("| (%d more modules) | %s | %s | %s | %.1f %% |\n", len(mods)-top, comma(rest.Text), comma(rest.Data), comma(rest.Text+rest.Data), 100*float64(rest.Text+rest.Data)/float64(total))
		}
	}
	return nil
}

func comma(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
