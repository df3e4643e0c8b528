package windows

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/windows"
)

// The hot key (Esc takes control back, as in Windows XP's Remote
// Assistance) is watched by a low-level keyboard hook (WH_KEYBOARD_LL):
// Windows hands it every key event of the session, real or injected,
// before any application, and the hook may swallow it. Each press of the
// key is the expert's when Windows marks it injected (LLKHF_INJECTED)
// *and* isInjected claims it; those pass through. Any other press is the
// novice's: it is swallowed with its release and auto-repeats, and
// onPress runs. SendInput does not auto-repeat, so a held expert Esc
// cannot pass for the novice's.

// hookState is the one hot key a Desktop watches; the hook procedure
// reads it through activeHook (Windows calls the procedure with no
// context of ours).
type hookState struct {
	mu     sync.Mutex
	active *hotKey
}

// hotKey is one watch.
type hotKey struct {
	d          *Desktop
	vk         uint32
	isInjected func() bool
	onPress    func()
	hook       windows.Handle
	swallowing bool // the novice holds the key; set and read on the UI thread
	stopOnce   sync.Once
}

var (
	activeMu   sync.Mutex
	activeHook *hotKey
	// hookProc is created once: callbacks are a limited resource that is
	// never freed.
	hookProc = windows.NewCallback(lowLevelKeyboardProc)
)

// WatchHotKey takes keysym away from applications until stop is called,
// except presses SendInput injected that isInjected claims (the
// expert's). For every other press onPress runs in a goroutine of its
// own. isInjected runs on the hook's thread: Windows drops a hook that
// takes longer than a few hundred milliseconds, so it must be quick.
func (d *Desktop) WatchHotKey(keysym uint32, isInjected func() bool, onPress func()) (stop func(), err error) {
	v, ok := keysymVK[keysym]
	if !ok {
		return nil, fmt.Errorf("windows: hot key %#x is not a function key", keysym)
	}
	activeMu.Lock()
	busy := activeHook != nil
	activeMu.Unlock()
	if busy {
		return nil, errors.New("windows: a hot key is already watched")
	}
	hk := &hotKey{d: d, vk: uint32(v.vk), isInjected: isInjected, onPress: onPress}
	var herr error
	if err := d.ui.do(func() {
		h, _, err := procSetWindowsHookExW.Call(whKeyboardLL, hookProc, moduleHandle(), 0)
		if h == 0 {
			herr = fmt.Errorf("windows: SetWindowsHookEx(WH_KEYBOARD_LL): %w", err)
			return
		}
		hk.hook = windows.Handle(h)
		activeMu.Lock()
		activeHook = hk
		activeMu.Unlock()
	}); err != nil {
		return nil, err
	}
	if herr != nil {
		return nil, herr
	}
	d.hook.mu.Lock()
	d.hook.active = hk
	d.hook.mu.Unlock()
	return hk.stop, nil
}

func moduleHandle() uintptr {
	var h windows.Handle
	windows.GetModuleHandleEx(0, nil, &h)
	return uintptr(h)
}

// stop removes the hook; once it returns, onPress is not called again
// (a call already started goes on).
func (hk *hotKey) stop() {
	hk.stopOnce.Do(func() {
		// On the hook's thread: it is the thread that runs the
		// procedure, so no call of it is in flight.
		hk.d.ui.do(func() {
			procUnhookWindowsHookEx.Call(uintptr(hk.hook))
			activeMu.Lock()
			if activeHook == hk {
				activeHook = nil
			}
			activeMu.Unlock()
		})
		hk.d.hook.mu.Lock()
		if hk.d.hook.active == hk {
			hk.d.hook.active = nil
		}
		hk.d.hook.mu.Unlock()
	})
}

func (h *hookState) stopAll() {
	h.mu.Lock()
	hk := h.active
	h.mu.Unlock()
	if hk != nil {
		hk.stop()
	}
}

// lowLevelKeyboardProc is the hook procedure. It runs on the UI thread.
func lowLevelKeyboardProc(code int, wParam, lParam uintptr) uintptr {
	if code == hcAction {
		activeMu.Lock()
		hk := activeHook
		activeMu.Unlock()
		kb := ptrTo[kbdLLHookStruct](lParam)
		if hk != nil && kb.VkCode == hk.vk && hk.decide(wParam, kb.Flags&llkhfInjected != 0) {
			return 1 // swallowed
		}
	}
	r, _, _ := procCallNextHookEx.Call(0, uintptr(code), wParam, lParam)
	return r
}

// decide reports whether to swallow a key event of the hot key.
func (hk *hotKey) decide(wParam uintptr, injected bool) bool {
	switch wParam {
	case wmKeyDown, wmSysKeyDown:
		if hk.swallowing {
			return true // the novice's key auto-repeating
		}
		if injected && hk.isInjected() {
			return false
		}
		hk.swallowing = true
		go hk.onPress()
		return true
	case wmKeyUp, wmSysKeyUp:
		if hk.swallowing {
			hk.swallowing = false
			return true
		}
	}
	return false
}
