package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestExpertJS runs the unit tests of the expert page's JavaScript
// (expert/_test/*.test.mjs: the parsers of untrusted signalling in
// signal.js, the path naming in path.js) with Node's built-in test runner.
// The _test directory starts with "_", so go:embed leaves it out of the
// served app.
//
// (The file is not expert_js_test.go: a _js suffix makes a GOOS=js file.)
//
// The modules and tests are copied next to a package.json that declares
// them ES modules: web/package.json does not, and Node before 20.19 will
// not guess.
func TestExpertJS(t *testing.T) {
	runNodeTests(t, "expert", "*.js")
}

// TestSessionJS runs the session view's unit tests: its words (the
// module without a DOM) and the scaled rectangles' decoder.
func TestSessionJS(t *testing.T) {
	runNodeTests(t, "session", "words.js", "scaled.js")
}

// runNodeTests copies dir's modules matching globs and dir/_test's tests
// into a temporary directory and runs them with node --test.
func runNodeTests(t *testing.T, src string, globs ...string) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (scripts/setup.sh installs it): the pages' JavaScript unit tests need it")
	}
	dir := t.TempDir()
	for _, glob := range globs {
		copyGlob(t, filepath.Join(src, glob), dir)
	}
	copyGlob(t, filepath.Join(src, "_test", "*.test.mjs"), filepath.Join(dir, "_test"))
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"type": "module", "private": true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests, _ := filepath.Glob(filepath.Join(dir, "_test", "*.test.mjs"))
	if len(tests) == 0 {
		t.Fatalf("no %s/_test/*.test.mjs", src)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test"}, tests...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	// node prints a TAP summary ("# pass N"); a run that found no test
	// must not pass.
	m := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("node --test printed no summary:\n%s", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n == 0 {
		t.Fatalf("node --test ran no test:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("node --test:\n%s", out)
	}
}

// copyGlob copies the files matching pattern into dir.
func copyGlob(t *testing.T, pattern, dir string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
