// Package netns handles Linux network namespaces by name, as `ip netns`
// keeps them (/run/netns/NAME): creating and deleting them, running the ip
// tool, and running Go code with its sockets and devices inside one. The
// test lab (internal/lab) and the link emulator (bench/linkem) both build
// their networks with it. Namespaces need root.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// UniquePrefix returns a short prefix for namespace names, tag and 8 hex
// digits and a dash, different for every call, so that the networks of
// parallel tests and benchmark runs never share a namespace.
func UniquePrefix(tag string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("netns: random prefix: %w", err)
	}
	return tag + hex.EncodeToString(b[:]) + "-", nil
}

// Create creates namespace name (`ip netns add`) with its loopback up.
func Create(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns: ip netns add %s: %v: %s (network namespaces need root)", name, err, strings.TrimSpace(string(out)))
	}
	if err := IP("-n", name, "link", "set", "lo", "up"); err != nil {
		return errors.Join(err, Delete(name))
	}
	return nil
}

// Delete stops the processes still running in the namespaces names (their
// names are their creator's own, so the processes are the creator's too:
// SIGTERM to all, then SIGKILL to those left after 3 s) and deletes them.
// A namespace already gone is no error.
func Delete(names ...string) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		alive := false
		for _, name := range names {
			for _, pid := range PIDs(name) {
				alive = true
				_ = syscall.Kill(pid, sig)
			}
		}
		if !alive {
			break
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && anyPIDs(names); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	var errs []error
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("netns: ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

func anyPIDs(names []string) bool {
	for _, name := range names {
		if len(PIDs(name)) > 0 {
			return true
		}
	}
	return false
}

// PIDs lists the processes in namespace name, this one excepted.
func PIDs(name string) []int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// IP runs the ip tool with args.
func IP(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("netns: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs fn on an OS thread that has joined namespace name. Sockets and
// devices fn opens belong to the namespace for their whole life and may be
// used from any goroutine afterwards. fn must not start goroutines that
// open them.
func Do(name string, fn func() error) error {
	f, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		return fmt.Errorf("netns: %s: %w", name, err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends the runtime discards
		// the thread instead of reusing one that sits in another
		// namespace.
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("netns: setns %s: %w", name, err)
			return
		}
		done <- fn()
	}()
	return <-done
}
