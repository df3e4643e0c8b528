package netns

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestNamespace: Create makes a namespace with loopback up, Do runs code
// whose sockets live in it, PIDs sees a process started in it, and Delete
// stops that process and removes the namespace; a missing namespace is
// no error for Delete and ErrNotExist for Do.
func TestNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netns: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns: needs the ip tool (iproute2)")
	}
	prefix, err := UniquePrefix("nt")
	if err != nil {
		t.Fatal(err)
	}
	if other, _ := UniquePrefix("nt"); other == prefix || len(prefix) != len("nt")+8+1 {
		t.Fatalf("prefixes %q and %q", prefix, other)
	}
	name := prefix + "a"
	if err := Create(name); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { _ = Delete(name) })

	// Inside, a listener on loopback works and the host's interfaces
	// are not there: only lo.
	var ifaces []net.Interface
	err = Do(name, func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ln.Close()
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].Flags&net.FlagUp == 0 {
		t.Errorf("interfaces inside: %v, want lo up only", ifaces)
	}

	// The shell says "in" once ip has entered the namespace and exec'd
	// it: before that, the process is still in the host's namespace.
	cmd := exec.Command("ip", "netns", "exec", name, "sh", "-c", "echo in; exec sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "in\n" {
		t.Fatalf("the process in the namespace said %q, %v", line, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if pids := PIDs(name); !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("PIDs = %v, want %d among them", pids, cmd.Process.Pid)
	}
	if err := Delete(name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := <-waited; err == nil {
		t.Error("the process in the namespace was not stopped")
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the namespace is still there: %v", err)
	}
	if err := Delete(name); err != nil {
		t.Errorf("Delete of a namespace gone: %v", err)
	}
	if err := Do(name, func() error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Do in a namespace gone: %v", err)
	}
	if err := IP("-n", name, "link"); err == nil {
		t.Error("IP in a namespace gone did not fail")
	}
}
