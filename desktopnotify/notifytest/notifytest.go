// Package notifytest runs what tests of desktop notifications need: a real
// session bus (dbus-daemon) and a notification service registered on it
// that records what it is asked to show and presses its buttons on demand.
package notifytest

import (
	"bufio"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
)

const (
	service = "org.freedesktop.Notifications"
	path    = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface   = "org.freedesktop.Notifications"
)

// SessionBus starts a real dbus-daemon with the session configuration and
// returns its address; it is stopped in t.Cleanup. It skips the test
// without dbus-daemon.
func SessionBus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon is not installed (Debian: dbus-daemon)")
	}
	cmd := exec.Command(bin, "--session", "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// Note is one notification the service was asked to show.
type Note struct {
	ID      uint32
	Summary string
	Body    string
	Actions []string
}

// Service is a notification service on a bus.
type Service struct {
	conn *dbus.Conn
	caps []string
	// Shown receives every notification shown (buffered; the test reads).
	Shown chan Note

	mu     sync.Mutex
	next   uint32
	closed []uint32
}

// StartService registers a notification service with capabilities caps
// on the bus at addr; it leaves the bus in t.Cleanup.
func StartService(t testing.TB, addr string, caps ...string) *Service {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &Service{conn: conn, caps: caps, Shown: make(chan Note, 16)}
	if err := conn.Export(s, path, iface); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(service, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v %v", r, err)
	}
	return s
}

// GetCapabilities is the D-Bus method.
func (s *Service) GetCapabilities() ([]string, *dbus.Error) { return s.caps, nil }

// Notify is the D-Bus method.
func (s *Service) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	s.next++
	id := s.next
	s.mu.Unlock()
	select {
	case s.Shown <- Note{ID: id, Summary: summary, Body: body, Actions: actions}:
	default:
		return 0, dbus.MakeFailedError(errors.New("too many notifications"))
	}
	return id, nil
}

// CloseNotification is the D-Bus method.
func (s *Service) CloseNotification(id uint32) *dbus.Error {
	s.mu.Lock()
	s.closed = append(s.closed, id)
	s.mu.Unlock()
	s.conn.Emit(path, iface+".NotificationClosed", id, uint32(3))
	return nil
}

// Closed returns the ids of the notifications closed by their sender.
func (s *Service) Closed() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint32(nil), s.closed...)
}

// Press presses the button key of notification id.
func (s *Service) Press(t testing.TB, id uint32, key string) {
	t.Helper()
	if err := s.conn.Emit(path, iface+".ActionInvoked", id, key); err != nil {
		t.Fatal(err)
	}
}
