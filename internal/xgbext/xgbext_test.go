package xgbext_test

import (
	"sync"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/xgbext"
)

// TestInitWhileAnotherReads: one connection receives a stream of events
// while others set up RANDR; under -race, xgb's own Init called on each
// (which rewrites the process-wide event tables the reader reads) is
// reported, Init here is not. Each new connection still gets RANDR's
// opcode and can use it.
func TestInitWhileAnotherReads(t *testing.T) {
	x := lab.StartXvfb(t, 320, 240)
	reader, err := xgb.NewConnDisplay(x.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := xgbext.Init(reader, "RANDR", randr.Init); err != nil {
		t.Fatal(err)
	}
	root := xproto.Setup(reader).DefaultScreen(reader).Root
	if err := xproto.ChangeWindowAttributesChecked(reader, root, xproto.CwEventMask, []uint32{xproto.EventMaskPropertyChange}).Check(); err != nil {
		t.Fatal(err)
	}
	// Property changes on the root: events for the reader's goroutine,
	// which looks each up in xgb's event table.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		atom, err := xproto.InternAtom(reader, false, 4, "TEST").Reply()
		if err != nil {
			t.Error(err)
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			xproto.ChangeProperty(reader, xproto.PropModeReplace, root, atom.Atom, xproto.AtomString, 8, 1, []byte{byte(i)})
		}
	}()
	go func() {
		defer wg.Done()
		for {
			ev, err := reader.WaitForEvent()
			if ev == nil && err == nil {
				return // closed
			}
		}
	}()
	for range 5 {
		c, err := xgb.NewConnDisplay(x.Display)
		if err != nil {
			t.Fatal(err)
		}
		if err := xgbext.Init(c, "RANDR", randr.Init); err != nil {
			t.Fatal(err)
		}
		if _, err := randr.QueryVersion(c, 1, 3).Reply(); err != nil {
			t.Errorf("RANDR on a later connection: %v", err)
		}
		c.Close()
	}
	close(stop)
	reader.Close()
	wg.Wait()
}
