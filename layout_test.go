package holdfast_test

import (
	"go/ast"
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

// TestDependencyRules keeps the architecture's seams: the domain package
// imports nothing from this module; the health engine and the classifier
// import no store, provider, HTTP or database package; the store adapters
// import only the vocabulary (and each other's test helpers); jobs runs no
// store adapter nor connector (cmd runs the migrations); config does not reach into the
// health engine; and the provider connectors import no runtime package.
// A dir ending in "/..." covers its subdirectories too. only, when set,
// lists the module's packages (prefixes ending in "/", or exact paths)
// that the dir may import: every other package of the module is banned.
func TestDependencyRules(t *testing.T) {
	t.Parallel()
	const module = "github.com/holdfast/holdfast"
	runtime := []string{module + "/monitor", module + "/syncer", module + "/jobs", module + "/httpapi", module + "/dashboard", module + "/notify", module + "/webhook"}
	rules := []struct {
		dir    string
		banned []string
		only   []string
	}{
		{".", []string{module + "/"}, nil},
		{"health", []string{module + "/store", module + "/provider", module + "/httpapi", module + "/jobs", "net/http", "database/sql", "github.com/jackc/", "modernc.org/", "github.com/riverqueue/"}, nil},
		{"classify", []string{module + "/store", module + "/provider", module + "/health", "database/sql", "github.com/jackc/", "modernc.org/", "github.com/riverqueue/"}, nil},
		{"store/...", nil, []string{module, module + "/store/"}},
		// The workers decide on root vocabulary (holdfast.ErrOutcomeUnknown),
		// never on a connector's, and run no store adapter.
		{"jobs", []string{module + "/store/", module + "/provider/"}, nil},
		{"config", []string{module + "/health"}, nil},
		{"provider/...", runtime, nil},
		// The address guard is shared by webhooks and the mail connectors.
		{"netguard", []string{module + "/"}, nil},
	}
	for _, r := range rules {
		for _, path := range goFiles(t, r.dir) {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range r.banned {
					if matches(p, b) {
						t.Errorf("%s imports %s; %s must not depend on %s", path, p, r.dir, b)
					}
				}
				if r.only == nil || (p != module && !strings.HasPrefix(p, module+"/")) {
					continue
				}
				allowed := false
				for _, a := range r.only {
					allowed = allowed || p == a || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a)
				}
				if !allowed {
					t.Errorf("%s imports %s; of this module, %s may import only %v", path, p, r.dir, r.only)
				}
			}
		}
	}
}

// matches reports whether import path p is rule or starts with it.
func matches(p, rule string) bool {
	return p == strings.TrimSuffix(rule, "/") || strings.HasPrefix(p, rule)
}

// goFiles returns the non-test Go files of dir, and of its subdirectories
// (but testdata) when dir ends in "/...".
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	root, recursive := strings.CutSuffix(dir, "/...")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (!recursive || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

// TestVocabularyDeclaredOnce: the words callers decide on are declared in
// the root package only, never again by an adapter (an "outcome unknown"
// of provider/smtp's own would split the send worker's decision).
func TestVocabularyDeclaredOnce(t *testing.T) {
	t.Parallel()
	words := map[string]bool{"ErrOutcomeUnknown": true, "IncidentKind": true, "SendReason": true, "HeldReason": true}
	for _, dir := range packages(t) {
		if dir == "." {
			continue
		}
		for _, path := range goFiles(t, dir) {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok {
					continue
				}
				for _, spec := range gd.Specs {
					var names []*ast.Ident
					switch s := spec.(type) {
					case *ast.ValueSpec:
						names = s.Names
					case *ast.TypeSpec:
						names = []*ast.Ident{s.Name}
					}
					for _, n := range names {
						if words[n.Name] {
							t.Errorf("%s declares %s; it is root vocabulary (package holdfast)", path, n.Name)
						}
					}
				}
			}
		}
	}
}
