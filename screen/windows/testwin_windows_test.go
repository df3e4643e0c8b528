package windows

import (
	"fmt"
	"image"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The tests' own window: it paints itself with a known picture and
// records the keys, characters and clicks it receives, so that what the
// Desktop captures and injects can be checked inside Windows.

var (
	procRegisterClassExW    = user32.NewProc("RegisterClassExW")
	procCreateWindowExW     = user32.NewProc("CreateWindowExW")
	procDefWindowProcW      = user32.NewProc("DefWindowProcW")
	procDestroyWindow       = user32.NewProc("DestroyWindow")
	procSetForegroundWindow = user32.NewProc("SetForegroundWindow")
	procTranslateMessage    = user32.NewProc("TranslateMessage")
	procDispatchMessageW    = user32.NewProc("DispatchMessageW")
	procPostMessageW        = user32.NewProc("PostMessageW")
	procBeginPaint          = user32.NewProc("BeginPaint")
	procEndPaint            = user32.NewProc("EndPaint")
	procGetAsyncKeyState    = user32.NewProc("GetAsyncKeyState")
	procSetFocus            = user32.NewProc("SetFocus")
	procSetDIBitsToDevice   = gdi32.NewProc("SetDIBitsToDevice")
)

const (
	wsPopup    = 0x80000000
	wsVisible  = 0x10000000
	wsExTop    = 0x00000008
	wmDestroy  = 0x0002
	wmSetFocus = 0x0007
	wmClose    = 0x0010
	wmPaint    = 0x000F
	wmChar     = 0x0102
	wmLButton  = 0x0201
	wmLButtonU = 0x0202
	wmRButton  = 0x0204
	wmWheel    = 0x020A
	wmHWheel   = 0x020E
)

type wndClassEx struct {
	Size       uint32
	Style      uint32
	WndProc    uintptr
	ClsExtra   int32
	WndExtra   int32
	Instance   windows.Handle
	Icon       windows.Handle
	Cursor     windows.Handle
	Background windows.Handle
	MenuName   *uint16
	ClassName  *uint16
	IconSm     windows.Handle
}

type paintStruct struct {
	Hdc         windows.Handle
	Erase       int32
	Paint       [4]int32
	Restore     int32
	IncUpdate   int32
	RgbReserved [32]byte
}

// event is something the window received.
type event struct {
	msg    uint32
	wParam uintptr
	lParam uintptr
}

// testWindow is a borderless window on a thread of its own.
type testWindow struct {
	t      testing.TB
	hwnd   windows.Handle
	rect   image.Rectangle // in screen coordinates
	pict   []byte          // BGRX, rect's size, top-down
	tid    uint32
	closed chan struct{}

	focused chan struct{} // closed at the first WM_SETFOCUS

	mu     sync.Mutex
	events []event
}

var (
	windowsMu  sync.Mutex
	windowsBy  = map[windows.Handle]*testWindow{}
	classOnce  sync.Once
	className  = windows.StringToUTF16Ptr("AssistTestWindow")
	wndProcPtr = windows.NewCallback(testWndProc)
	creating   *testWindow // the window CreateWindowEx is making; under windowsMu
	createMu   sync.Mutex  // one CreateWindowEx at a time
)

// testPicture is the picture a test window shows: different in every
// pixel's neighbourhood, so that an offset or a swapped channel shows.
func testPicture(size image.Point) []byte {
	pix := make([]byte, 4*size.X*size.Y)
	for y := range size.Y {
		for x := range size.X {
			i := 4 * (y*size.X + x)
			pix[i+0] = byte(x * 3)       // B
			pix[i+1] = byte(y * 5)       // G
			pix[i+2] = byte((x + y) * 7) // R
			pix[i+3] = 0
		}
	}
	return pix
}

// openTestWindow shows a window at r painted with testPicture, in front
// and focused, and closes it on cleanup.
func openTestWindow(t testing.TB, r image.Rectangle) *testWindow {
	t.Helper()
	w := &testWindow{t: t, rect: r, pict: testPicture(r.Size()), closed: make(chan struct{}), focused: make(chan struct{})}
	ready := make(chan error, 1)
	go w.run(ready)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	// Keys go to the thread whose window has the focus, and so does the
	// modifier state a WM_CHAR is translated with: a Shift sent before
	// the focus arrives would be lost for this window.
	select {
	case <-w.focused:
	case <-time.After(5 * time.Second):
		t.Fatal("the test window never got the keyboard focus")
	}
	return w
}

func (w *testWindow) run(ready chan<- error) {
	runtime.LockOSThread() // the window is the thread's for good
	defer close(w.closed)
	w.tid = windows.GetCurrentThreadId()
	var err error
	classOnce.Do(func() {
		wc := wndClassEx{WndProc: wndProcPtr, ClassName: className}
		wc.Size = uint32(unsafe.Sizeof(wc))
		if r, _, e := procRegisterClassExW.Call(uintptr(unsafe.Pointer(&wc))); r == 0 {
			err = fmt.Errorf("RegisterClassEx: %w", e)
		}
	})
	if err != nil {
		ready <- err
		return
	}
	// The window procedure runs inside CreateWindowEx, before the handle
	// is known: it finds the window as the one being created.
	createMu.Lock()
	windowsMu.Lock()
	creating = w
	windowsMu.Unlock()
	h, _, e := procCreateWindowExW.Call(wsExTop, uintptr(unsafe.Pointer(className)), 0, wsPopup|wsVisible,
		uintptr(w.rect.Min.X), uintptr(w.rect.Min.Y), uintptr(w.rect.Dx()), uintptr(w.rect.Dy()), 0, 0, 0, 0)
	windowsMu.Lock()
	creating = nil
	if h != 0 {
		w.hwnd = windows.Handle(h)
		windowsBy[w.hwnd] = w
	}
	windowsMu.Unlock()
	createMu.Unlock()
	if h == 0 {
		ready <- fmt.Errorf("CreateWindowEx: %w", e)
		return
	}
	procSetForegroundWindow.Call(h)
	procSetFocus.Call(h)
	ready <- nil
	var m msg
	for {
		r, _, _ := procGetMessageW.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0)
		if int32(r) <= 0 {
			return
		}
		procTranslateMessage.Call(uintptr(unsafe.Pointer(&m)))
		procDispatchMessageW.Call(uintptr(unsafe.Pointer(&m)))
	}
}

func testWndProc(hwnd windows.Handle, m uint32, wParam, lParam uintptr) uintptr {
	windowsMu.Lock()
	w := windowsBy[hwnd]
	if w == nil {
		w = creating
	}
	windowsMu.Unlock()
	if w != nil {
		switch m {
		case wmPaint:
			var ps paintStruct
			dc, _, _ := procBeginPaint.Call(uintptr(hwnd), uintptr(unsafe.Pointer(&ps)))
			size := w.rect.Size()
			bi := bitmapInfo{Header: bitmapInfoHeader{Width: int32(size.X), Height: -int32(size.Y), Planes: 1, BitCount: 32}}
			bi.Header.Size = uint32(unsafe.Sizeof(bi.Header))
			procSetDIBitsToDevice.Call(dc, 0, 0, uintptr(size.X), uintptr(size.Y), 0, 0, 0, uintptr(size.Y),
				uintptr(unsafe.Pointer(&w.pict[0])), uintptr(unsafe.Pointer(&bi)), dibRGBColors)
			procEndPaint.Call(uintptr(hwnd), uintptr(unsafe.Pointer(&ps)))
			return 0
		case wmKeyDown, wmKeyUp, wmSysKeyDown, wmSysKeyUp, wmChar, wmLButton, wmLButtonU, wmRButton, wmWheel, wmHWheel:
			w.mu.Lock()
			w.events = append(w.events, event{m, wParam, lParam})
			w.mu.Unlock()
		case wmSetFocus:
			select {
			case <-w.focused:
			default:
				close(w.focused)
			}
		case wmClose:
			procDestroyWindow.Call(uintptr(hwnd))
			return 0
		case wmDestroy:
			procPostThreadMessageW.Call(uintptr(w.tid), wmQuit, 0, 0)
			return 0
		}
	}
	r, _, _ := procDefWindowProcW.Call(uintptr(hwnd), uintptr(m), wParam, lParam)
	return r
}

func (w *testWindow) close() {
	procPostMessageW.Call(uintptr(w.hwnd), wmClose, 0, 0)
	select {
	case <-w.closed:
	case <-time.After(5 * time.Second):
		w.t.Errorf("the test window did not close")
	}
	windowsMu.Lock()
	delete(windowsBy, w.hwnd)
	windowsMu.Unlock()
}

// take returns and forgets the events received so far.
func (w *testWindow) take() []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	ev := w.events
	w.events = nil
	return ev
}

// waitEvents waits until cond holds for the events received so far (they
// are kept), or fails the test after 5 s.
func (w *testWindow) waitEvents(cond func([]event) bool) []event {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		ev := append([]event(nil), w.events...)
		w.mu.Unlock()
		if cond(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the window's events %v never satisfied the test", ev)
		}
		time.Sleep(10 * time.Millisecond) // no signal to wait on: Windows delivers asynchronously
	}
}

// chars is the text of the WM_CHAR events in ev.
func chars(ev []event) string {
	var u []uint16
	for _, e := range ev {
		if e.msg == wmChar {
			u = append(u, uint16(e.wParam))
		}
	}
	return windows.UTF16ToString(u)
}

func keyDowns(ev []event, vk uintptr) int {
	n := 0
	for _, e := range ev {
		if (e.msg == wmKeyDown || e.msg == wmSysKeyDown) && e.wParam == vk {
			n++
		}
	}
	return n
}

func keyUps(ev []event, vk uintptr) int {
	n := 0
	for _, e := range ev {
		if (e.msg == wmKeyUp || e.msg == wmSysKeyUp) && e.wParam == vk {
			n++
		}
	}
	return n
}
