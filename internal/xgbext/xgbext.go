// Package xgbext sets up X extensions on xgb connections without xgb's
// process-wide data race.
//
// Each xgb extension's Init records the extension's opcode on its
// connection (under the connection's lock) and also writes the event and
// error constructors into process-wide tables that every connection's
// reader goroutine reads without a lock. A process with two connections
// (the novice's screen and its on-screen indicator) would write those
// tables while the other connection reads them: a data race, and Go may
// stop the process on a concurrent map read and write. The tables hold
// the same entries for every connection to one server, so Init runs
// xgb's own Init once per extension per process and, after that, only
// records the opcode on the new connection.
package xgbext

import (
	"fmt"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

var (
	mu         sync.Mutex
	registered = map[string]bool{}
)

// Init sets up the extension name (as the X server calls it, "RANDR")
// on c; init is the xgb package's own Init (randr.Init).
func Init(c *xgb.Conn, name string, init func(*xgb.Conn) error) error {
	mu.Lock()
	defer mu.Unlock()
	if !registered[name] {
		if err := init(c); err != nil {
			return err
		}
		registered[name] = true
		return nil
	}
	reply, err := xproto.QueryExtension(c, uint16(len(name)), name).Reply()
	if err != nil {
		return fmt.Errorf("x11: query extension %s: %w", name, err)
	}
	if !reply.Present {
		return fmt.Errorf("x11: the X server has no %s extension", name)
	}
	c.ExtLock.Lock()
	c.Extensions[name] = reply.MajorOpcode
	c.ExtLock.Unlock()
	return nil
}
