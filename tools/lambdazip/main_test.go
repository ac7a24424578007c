package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestPackIsExecutableAtTheRootAndReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	content := []byte("#!/bin/sh\necho hello\n")
	if err := os.WriteFile(bin, content, 0o755); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	for _, out := range []string{a, b} {
		if err := pack(out, bin); err != nil {
			t.Fatal(err)
		}
	}
	za, _ := os.ReadFile(a)
	zb, _ := os.ReadFile(b)
	if !bytes.Equal(za, zb) {
		t.Error("two packs of the same binary differ")
	}
	r, err := zip.OpenReader(a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.File) != 1 || r.File[0].Name != "bootstrap" || r.File[0].Mode().Perm()&0o111 == 0 {
		t.Fatalf("zip holds %v", r.File)
	}
	f, _ := r.File[0].Open()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, content) {
		t.Error("content changed")
	}
	if err := pack(filepath.Join(dir, "c.zip"), filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing bootstrap was packed")
	}
}
