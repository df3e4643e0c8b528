package pgtest

import "syscall"

// setDeathSignal has the kernel stop PostgreSQL (immediate shutdown) if
// the test process dies without cleaning up, e.g. on a -timeout panic.
func setDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGQUIT }
