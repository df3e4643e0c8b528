// Package desktopnotify asks the user a yes-or-no question on the Linux
// desktop: a notification with Accept and Decline actions through the
// freedesktop.org notification service (org.freedesktop.Notifications on
// the session bus, as GNOME Shell, KDE Plasma, xfce4-notifyd, dunst and
// mako implement it). The agent of an organisation's machine asks with it
// whether to accept an offer of help; its own terminal and page ask too, so
// a desktop without a notification service loses nothing.
package desktopnotify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

const (
	service = "org.freedesktop.Notifications"
	path    = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface   = "org.freedesktop.Notifications"

	// ActionAccept and ActionDecline are the action keys of a question.
	ActionAccept  = "accept"
	ActionDecline = "decline"
)

// ErrUnavailable: no session bus, no notification service on it, or one
// that cannot show actions (buttons).
var ErrUnavailable = errors.New("no desktop notification service with actions")

// Notifier is a connection to the notification service. Close it to stop
// its goroutine.
type Notifier struct {
	conn    *dbus.Conn
	obj     dbus.BusObject
	signals chan *dbus.Signal
	done    chan struct{}

	mu      sync.Mutex
	pending map[uint32]func(accept bool) // by notification id
	early   map[uint32]string            // actions that beat Notify's reply
}

// SessionAddress returns the session bus's address: $DBUS_SESSION_BUS_ADDRESS,
// else $XDG_RUNTIME_DIR/bus if it exists; "" for none (nothing is
// started to find one).
func SessionAddress() string {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		p := filepath.Join(d, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return "unix:path=" + p
		}
	}
	return ""
}

// Open connects to the session bus at address and checks that a
// notification service runs there and shows actions (ErrUnavailable
// otherwise).
func Open(ctx context.Context, address string) (*Notifier, error) {
	if address == "" {
		return nil, fmt.Errorf("%w: no session bus", ErrUnavailable)
	}
	// ctx bounds the calls below only: dbus.WithContext would close the
	// connection when it ends.
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, fmt.Errorf("%w: session bus: %v", ErrUnavailable, err)
	}
	obj := conn.Object(service, path)
	var caps []string
	if err := obj.CallWithContext(ctx, iface+".GetCapabilities", 0).Store(&caps); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !slices.Contains(caps, "actions") {
		conn.Close()
		return nil, fmt.Errorf("%w: the notification service shows no buttons", ErrUnavailable)
	}
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(iface)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("desktop notifications: %w", err)
	}
	n := &Notifier{conn: conn, obj: obj, signals: make(chan *dbus.Signal, 16), done: make(chan struct{}),
		pending: map[uint32]func(bool){}, early: map[uint32]string{}}
	conn.Signal(n.signals)
	go n.run()
	return n, nil
}

// run dispatches the service's signals until the connection closes.
func (n *Notifier) run() {
	defer close(n.done)
	for s := range n.signals {
		if len(s.Body) < 2 {
			continue
		}
		id, ok := s.Body[0].(uint32)
		if !ok {
			continue
		}
		switch s.Name {
		case iface + ".ActionInvoked":
			key, _ := s.Body[1].(string)
			n.settle(id, key)
		case iface + ".NotificationClosed":
			// Dismissed, expired or withdrawn: no answer here (the
			// agent's own timer makes it a no).
			n.settle(id, "")
		}
	}
}

// settle hands an action to the question id, once.
func (n *Notifier) settle(id uint32, key string) {
	n.mu.Lock()
	answer, ok := n.pending[id]
	if !ok {
		if key != "" {
			n.early[id] = key
		}
		n.mu.Unlock()
		return
	}
	delete(n.pending, id)
	n.mu.Unlock()
	switch key {
	case ActionAccept:
		answer(true)
	case ActionDecline:
		answer(false)
	}
}

// Ask shows summary (plain text) with Accept and Decline buttons; answer
// is called at most once, from another goroutine, with the button
// pressed (nothing when the notification is dismissed). withdraw closes
// the notification and forgets the question.
func (n *Notifier) Ask(ctx context.Context, summary string, answer func(accept bool)) (withdraw func(), err error) {
	hints := map[string]dbus.Variant{
		"urgency":  dbus.MakeVariant(byte(2)), // critical: stays until answered
		"resident": dbus.MakeVariant(false),
		"category": dbus.MakeVariant("im.received"),
	}
	var id uint32
	// The summary is plain text by the specification; the body may be
	// markup, so it stays empty: nothing a peer chose is ever parsed.
	err = n.obj.CallWithContext(ctx, iface+".Notify", 0, "Assist", uint32(0), "help-browser", summary, "",
		[]string{ActionAccept, "Accept", ActionDecline, "Decline"}, hints, int32(0)).Store(&id)
	if err != nil {
		return func() {}, fmt.Errorf("desktop notification: %w", err)
	}
	n.mu.Lock()
	n.pending[id] = answer
	key, early := n.early[id]
	delete(n.early, id)
	n.mu.Unlock()
	if early {
		n.settle(id, key)
	}
	return func() {
		n.mu.Lock()
		_, open := n.pending[id]
		delete(n.pending, id)
		n.mu.Unlock()
		if open {
			// Best effort: the service may have closed it already.
			n.obj.Call(iface+".CloseNotification", 0, id)
		}
	}, nil
}

// Close closes the connection and waits for the signal goroutine.
func (n *Notifier) Close() error {
	err := n.conn.Close()
	<-n.done
	return err
}

// Escape makes text safe for a notification body that the service may
// read as markup (for callers that add a body).
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
