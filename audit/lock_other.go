//go:build !unix && !windows

package audit

import "os"

// lock does nothing where there is no file locking (js/wasm, where the
// browser's page reads entries and keeps no audit log file).
func lock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
