package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FindRepoRoot walks up from dir to the directory holding go.mod (go test runs in the package
// directory, go run wherever the person is).
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod above the working directory; run from inside the ptc-credentials checkout")
		}
		dir = parent
	}
}

// RepoRoot is FindRepoRoot from the working directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("reading the working directory: %w", err)
	}
	return FindRepoRoot(wd)
}
