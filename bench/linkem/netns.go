package linkem

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

// UniquePrefix returns a short prefix for namespace names ("lk" and 8 hex
// digits and a dash), different for every call, so that emulators of
// parallel tests and benchmark runs never share a namespace.
func UniquePrefix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("linkem: random prefix: %w", err)
	}
	return "lk" + hex.EncodeToString(b[:]) + "-", nil
}

// CreateNetns creates network namespace name (`ip netns add`) with its
// loopback up.
func CreateNetns(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("linkem: ip netns add %s: %v: %s (network namespaces need root)", name, err, strings.TrimSpace(string(out)))
	}
	if err := IP("-n", name, "link", "set", "lo", "up"); err != nil {
		return errors.Join(err, DeleteNetns(name))
	}
	return nil
}

// DeleteNetns stops the processes still running in namespace name (its
// name is its creator's own, so they are the creator's too: SIGTERM, then
// SIGKILL after 3 s) and deletes it. A namespace already gone is no error.
func DeleteNetns(name string) error {
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := netnsPIDs(name)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && len(netnsPIDs(name)) > 0; {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("linkem: ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netnsPIDs lists the processes in namespace name, this one excepted.
func netnsPIDs(name string) []int {
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
		return fmt.Errorf("linkem: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs fn on an OS thread that has joined namespace ns. Sockets and
// devices fn opens belong to ns for their whole life and may be used from
// any goroutine afterwards. fn must not start goroutines that open them.
func Do(ns string, fn func() error) error {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return fmt.Errorf("linkem: netns %s: %w", ns, err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends the runtime discards
		// the thread instead of reusing one that sits in another
		// namespace.
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("linkem: setns %s: %w", ns, err)
			return
		}
		done <- fn()
	}()
	return <-done
}
