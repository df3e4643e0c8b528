//go:build unix

package audit

import (
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, waiting for other assist
// processes to finish their append.
func lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

func unlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
