package logfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateDir(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name              string
		stateDir, xdg, hm string
		want              string
	}{
		{"ASSIST_STATE_DIR first", "/x/state", "/x/xdg", home, "/x/state"},
		{"XDG_STATE_HOME next", "", "/x/xdg", home, "/x/xdg/assist"},
		{"a relative XDG_STATE_HOME is ignored, as the spec says", "", "rel", home, filepath.Join(home, ".local/state/assist")},
		{"the home directory last", "", "", home, filepath.Join(home, ".local/state/assist")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvStateDir, tt.stateDir)
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.hm)
			got, err := StateDir()
			if err != nil || got != tt.want {
				t.Errorf("StateDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestOpen: by default the log goes to the file (0600 in a 0700
// directory) and nothing reaches stderr; --verbose, ASSIST_LOG and
// ToStderr send it to stderr at the level asked.
func TestOpen(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		env        string
		wantFile   bool
		wantDebug  bool
		wantStderr bool
	}{
		{name: "default: the file", wantFile: true},
		{name: "ASSIST_LOG=debug: stderr at debug", env: "debug", wantStderr: true, wantDebug: true},
		{name: "--verbose: stderr at info", opts: Options{Verbose: true}, wantStderr: true},
		{name: "a service: stderr", opts: Options{ToStderr: true}, wantStderr: true},
		{name: "an unknown level is the default", env: "loud", wantFile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			t.Setenv(EnvStateDir, dir)
			t.Setenv(EnvLevel, tt.env)
			var stderr bytes.Buffer
			tt.opts.Stderr = &stderr
			l := Open(tt.opts)
			if l.Err != nil {
				t.Fatal(l.Err)
			}
			l.Logger.Info("hello", "n", 1)
			l.Logger.Debug("details")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			file, _ := os.ReadFile(filepath.Join(dir, Name))
			if tt.wantFile {
				if l.Path != filepath.Join(dir, Name) {
					t.Errorf("Path %q, want %q", l.Path, filepath.Join(dir, Name))
				}
				if !bytes.Contains(file, []byte("msg=hello n=1")) {
					t.Errorf("the file holds %q, want the line", file)
				}
				fi, err := os.Stat(l.Path)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("the file's mode is %v (%v), want 0600", fi.Mode(), err)
				}
				if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
					t.Errorf("the directory's mode is %v (%v), want 0700", di.Mode(), err)
				}
			} else if l.Path != "" || len(file) > 0 {
				t.Errorf("Path %q and file %q, want no file", l.Path, file)
			}
			if got := strings.Contains(stderr.String(), "msg=hello"); got != tt.wantStderr {
				t.Errorf("stderr %q: line there %v, want %v", stderr.String(), got, tt.wantStderr)
			}
			if got := bytes.Contains(append(file, stderr.Bytes()...), []byte("msg=details")); got != tt.wantDebug {
				t.Errorf("debug line there %v, want %v", got, tt.wantDebug)
			}
		})
	}
}

// TestOpenRotates: a log above the limit moves to assist.log.1 when a
// command starts, so it cannot grow without bound.
func TestOpenRotates(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvStateDir, dir)
	t.Setenv(EnvLevel, "")
	old := bytes.Repeat([]byte("x"), maxSize+1)
	if err := os.WriteFile(filepath.Join(dir, Name), old, 0o600); err != nil {
		t.Fatal(err)
	}
	l := Open(Options{Stderr: &bytes.Buffer{}})
	if l.Err != nil {
		t.Fatal(l.Err)
	}
	l.Logger.Info("new run")
	l.Close()
	if fi, err := os.Stat(filepath.Join(dir, Name+".1")); err != nil || fi.Size() != int64(len(old)) {
		t.Errorf("the old log was not kept as %s.1: %v", Name, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, Name)); !bytes.Contains(b, []byte("new run")) || len(b) > 200 {
		t.Errorf("the new log holds %d bytes, want only the new run", len(b))
	}
}

// TestOpenUnwritable: when the file cannot be made, warnings still reach
// the person, on stderr, and the error says why.
func TestOpenUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvStateDir, filepath.Join(file, "state")) // under a file: cannot exist
	t.Setenv(EnvLevel, "")
	var stderr bytes.Buffer
	l := Open(Options{Stderr: &stderr})
	if l.Err == nil {
		t.Fatal("no error for a state directory that cannot exist")
	}
	l.Logger.Info("quiet")
	l.Logger.Warn("loud")
	if s := stderr.String(); strings.Contains(s, "quiet") || !strings.Contains(s, "loud") {
		t.Errorf("stderr %q, want the warning only", s)
	}
}
