package invitation

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestWriteReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "help-me") // no extension: WriteFile must not add one
	inv := valid()
	if err := WriteFile(path, inv); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, inv) {
		t.Errorf("ReadFile = %+v, want %+v", got, inv)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "help-me" {
		t.Errorf("directory holds %v, want just help-me (no extension added, no temporary file left)", entries)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x"+FileExtension)
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := valid()
	inv.Name = "Replaced"
	if err := WriteFile(path, inv); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Replaced" {
		t.Errorf("Name = %q", got.Name)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Errorf("replaced file has mode %v, want 0600", perm)
		}
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := valid()
	bad.ID = "x"
	path := filepath.Join(dir, "bad.assist")
	if err := WriteFile(path, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("WriteFile(invalid) = %v, want ErrInvalid", err)
	}
	missingDir := filepath.Join(dir, "no", "such", "dir", "a.assist")
	err := WriteFile(missingDir, valid())
	if err == nil || !strings.Contains(err.Error(), missingDir) {
		t.Errorf("WriteFile into a missing directory = %v, want an error naming the path", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left %v behind", entries)
	}
}

func TestReadFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nothing.assist")
	_, err := ReadFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile = %v, want fs.ErrNotExist", err)
	}
	for _, want := range []string{path, "does not exist", "ask the novice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestReadFileCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.assist")
	golden := readGolden(t)
	if err := os.WriteFile(path, golden[:len(golden)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile = %v, want ErrCorrupt naming the file", err)
	}
}

func TestReadFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.assist")
	if err := os.WriteFile(path, make([]byte, 10*MaxFileSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadFile = %v, want ErrCorrupt", err)
	}
}
