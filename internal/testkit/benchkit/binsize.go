package benchkit

import (
	"archive/zip"
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// ZipSize returns the size of a Lambda deployment zip holding bin as "bootstrap" at the root
// (Deflate at the default level, as `zip` uses and `make package` produces).
func ZipSize(bin string) (int64, error) {
	f, err := os.Open(bin)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h, err := zip.FileInfoHeader(st)
	if err != nil {
		return 0, err
	}
	h.Name, h.Method = "bootstrap", zip.Deflate
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, f); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return int64(buf.Len()), nil
}

// ModuleSize is what one module's symbols occupy in a binary.
type ModuleSize struct {
	Module string
	// Text is code; Data is read-only data, type descriptors and initialised variables.
	Text, Data int64
}

// SymbolBreakdown attributes the file-backed symbols of a non-stripped Go binary (built with
// -ldflags=-w: symbol table kept, DWARF dropped) to the modules named in its build info ("std"
// for the standard library, "other" for what has no package: type descriptors of unnamed types,
// itabs of generic shapes, string data). Symbols in .bss/.noptrbss take no file space and are
// skipped. It also returns the size of .gopclntab (the function tables, which grow with code)
// and of the whole file, so the caller can say what the symbols do not cover.
func SymbolBreakdown(bin string) (mods []ModuleSize, pclntab, file int64, err error) {
	ef, err := elf.Open(bin)
	if err != nil {
		return nil, 0, 0, err
	}
	defer ef.Close()
	type span struct{ lo, hi uint64 }
	var fileBacked []span
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOBITS || s.Addr == 0 {
			continue
		}
		if s.Name == ".gopclntab" {
			pclntab = int64(s.Size)
		}
		fileBacked = append(fileBacked, span{s.Addr, s.Addr + s.Size})
	}
	st, err := os.Stat(bin)
	if err != nil {
		return nil, 0, 0, err
	}
	file = st.Size()

	modules, err := buildModules(bin)
	if err != nil {
		return nil, 0, 0, err
	}
	out, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("go tool nm: %w", err)
	}
	acc := map[string]*ModuleSize{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// "  addr size type name..." (the name may hold spaces)
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		addr, err1 := strconv.ParseUint(f[0], 16, 64)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || size == 0 {
			continue
		}
		in := false
		for _, s := range fileBacked {
			if addr >= s.lo && addr < s.hi {
				in = true
				break
			}
		}
		if !in {
			continue
		}
		name := strings.Join(f[3:], " ")
		mod := moduleOf(PackageOf(name), modules)
		m := acc[mod]
		if m == nil {
			m = &ModuleSize{Module: mod}
			acc[mod] = m
		}
		if f[2] == "T" || f[2] == "t" {
			m.Text += size
		} else {
			m.Data += size
		}
	}
	for _, m := range acc {
		mods = append(mods, *m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Text+mods[i].Data > mods[j].Text+mods[j].Data })
	return mods, pclntab, file, sc.Err()
}

// buildModules lists the main module and dependencies recorded in the binary's build info.
func buildModules(bin string) ([]string, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("go version -m: %w", err)
	}
	var mods []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "mod" || f[0] == "dep") {
			mods = append(mods, f[1])
		}
	}
	// Longest first, so nested modules (aws-sdk-go-v2/service/...) win over their parents.
	sort.Slice(mods, func(i, j int) bool { return len(mods[i]) > len(mods[j]) })
	return mods, nil
}

func moduleOf(pkg string, modules []string) string {
	switch {
	case pkg == "":
		return "other"
	case strings.HasPrefix(pkg, "vendor/"):
		return "std"
	}
	for _, m := range modules {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		return "std"
	}
	return "other"
}

// PackageOf returns the import path a Go symbol name belongs to, or "" when it has none:
// "github.com/a/b.(*T).M" → "github.com/a/b"; "type:*net/http.Client" → "net/http";
// "go:itab.*os.File,io.Reader" → "os".
func PackageOf(sym string) string {
	s := sym
	for _, p := range []string{"type:", "go:itab.", "go:info.", "go:cuinfo."} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimLeft(s, "*")
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') || strings.HasPrefix(s, "go:") {
		return ""
	}
	if i := strings.IndexAny(s, "([,"); i >= 0 {
		s = s[:i]
	}
	slash := strings.LastIndexByte(s, '/')
	dot := strings.IndexByte(s[slash+1:], '.')
	if dot < 0 {
		return ""
	}
	return s[:slash+1+dot]
}
