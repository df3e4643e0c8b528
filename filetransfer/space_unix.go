//go:build unix

package filetransfer

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeSpace is how many bytes an unprivileged user may still write to
// the file system that holds dir.
func FreeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("filetransfer: free space of %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
