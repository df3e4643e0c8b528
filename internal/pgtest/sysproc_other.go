//go:build !unix

package pgtest

import "syscall"

type account struct{ uid, gid int }

// serverUser: tests run PostgreSQL as themselves off Unix.
func serverUser() (*account, error) { return nil, nil }

func sysProcAttr(*account) *syscall.SysProcAttr { return nil }
