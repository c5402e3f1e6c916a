package holdfast_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// packages returns the directories of the module that hold non-test Go
// files, relative to the module root.
func packages(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			seen[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	return dirs
}

// TestEveryPackageHasADoc fails for a package without a package doc
// comment.
func TestEveryPackageHasADoc(t *testing.T) {
	t.Parallel()
	for _, dir := range packages(t) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		documented := false
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, name), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				documented = true
			}
		}
		if !documented {
			t.Errorf("package in %s has no package doc comment", dir)
		}
	}
}

// TestDependencyRules keeps the centre of the architecture free of I/O
// adapters: the domain package imports nothing from this module, and the
// health engine and the classifier import no store, provider, HTTP or
// database package; no connector imports a runtime package.
func TestDependencyRules(t *testing.T) {
	t.Parallel()
	const module = "github.com/holdfast/holdfast"
	rules := []struct {
		dir    string
		banned []string
	}{
		{".", []string{module + "/"}},
		{"health", []string{module + "/store", module + "/provider", module + "/httpapi", module + "/jobs", "net/http", "database/sql", "github.com/jackc/", "modernc.org/", "github.com/riverqueue/"}},
		{"classify", []string{module + "/store", module + "/provider", module + "/health", "database/sql", "github.com/jackc/", "modernc.org/", "github.com/riverqueue/"}},
		// The workers decide on root vocabulary (holdfast.ErrOutcomeUnknown),
		// never on a connector's.
		{"jobs", []string{module + "/provider/"}},
	}
	// The connectors are adapters the runtime calls, never the reverse.
	for _, dir := range packages(t) {
		if strings.HasPrefix(filepath.ToSlash(dir), "provider/") {
			rules = append(rules, struct {
				dir    string
				banned []string
			}{dir, []string{module + "/monitor", module + "/syncer", module + "/jobs", module + "/httpapi"}})
		}
	}
	for _, r := range rules {
		entries, err := os.ReadDir(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			path := filepath.Join(r.dir, e.Name())
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range r.banned {
					if p == strings.TrimSuffix(b, "/") || strings.HasPrefix(p, b) {
						t.Errorf("%s imports %s; %s must not depend on %s", path, p, r.dir, b)
					}
				}
			}
		}
	}
}
