//go:build windows

package filetransfer

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// FreeSpace is how many bytes the user may still write to the volume
// that holds dir (their quota included).
func FreeSpace(dir string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, fmt.Errorf("filetransfer: free space of %s: %w", dir, err)
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, fmt.Errorf("filetransfer: free space of %s: %w", dir, err)
	}
	return avail, nil
}
