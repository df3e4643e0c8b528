//go:build unix

package invitation

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteFileMode checks the file is owner-only whatever the umask. It
// changes the process umask, so it must not run in parallel with tests that
// create files.
func TestWriteFileMode(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o077, 0o277} {
		old := syscall.Umask(mask)
		path := filepath.Join(t.TempDir(), "inv.assist")
		err := WriteFile(path, valid())
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %#o: %v", mask, err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Errorf("umask %#o: mode %v, want 0600", mask, perm)
		}
	}
}
