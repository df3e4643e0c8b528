//go:build !unix && !windows

package filetransfer

import (
	"errors"
	"runtime"
)

// FreeSpace cannot be measured here (the browser's WebAssembly has no
// file system of its own): every offer is refused rather than risk a
// full disk.
func FreeSpace(dir string) (uint64, error) {
	return 0, errors.New("filetransfer: free space unknown on " + runtime.GOOS)
}
