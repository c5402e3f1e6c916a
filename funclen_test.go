package holdfast_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function may be, outside tests, in the
// directories TestFunctionLength checks.
const maxFuncLines = 100

// TestFunctionLength fails for a function or method longer than
// maxFuncLines lines (from its func keyword to its closing brace) in
// cmd/, jobs/ and store/, test files and the store's conformance suite
// (store/storetest, tests by another name) aside. Long wiring or logic
// reads better as named steps.
func TestFunctionLength(t *testing.T) {
	t.Parallel()
	for _, root := range []string{"cmd", "jobs", "store"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || path == filepath.Join("store", "storetest")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				begin, end := fset.Position(fn.Pos()), fset.Position(fn.End())
				if n := end.Line - begin.Line + 1; n > maxFuncLines {
					t.Errorf("%s:%d: %s is %d lines long, want at most %d", path, begin.Line, fn.Name.Name, n, maxFuncLines)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
