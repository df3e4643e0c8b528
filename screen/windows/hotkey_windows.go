package windows

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/windows"
)

// The hot key (Esc takes control back, as in Windows XP's Remote
// Assistance) is watched by a low-level keyboard hook (WH_KEYBOARD_LL):
// Windows hands it every key event of the session, real or injected,
// before any application, and the hook may swallow it. A press is the
// expert's when Windows marks it injected (LLKHF_INJECTED) and this
// Desktop's Key injected a press of that key in the last second that the
// hook has not yet accounted for (injectedPresses): those pass through.
// Any other press is the novice's, from the keyboard or from another
// program that injects keys for them (the on-screen keyboard): it is
// swallowed with its release and auto-repeats, and onPress runs.
// SendInput does not auto-repeat, so a held expert Esc cannot pass for
// the novice's.
//
// Key keeps that record itself rather than the hook asking the X11
// backend's question (isInjected): Windows runs the hook while SendInput
// waits for it, and the session's Gate calls Key, so SendInput, holding
// the lock isInjected takes. Asking would hold the key until Windows
// gives up on the hook (seen under Wine: two seconds, after which the
// expert's Esc took control back). dwExtraInfo would be the other way to
// mark our events, but Wine does not pass it to low-level hooks.

// hookState is the one hot key a Desktop watches; the hook procedure
// reads it through activeHook (Windows calls the procedure with no
// context of ours).
type hookState struct {
	mu     sync.Mutex
	active *hotKey

	injected injectedPresses
}

// injectedPressTTL is how long a press Key injected waits for the hook;
// the hook runs before SendInput returns, so this is only a bound for a
// press made while no hook was installed.
const injectedPressTTL = time.Second

// injectedPresses records the presses of virtual keys Key injects, for
// the hook to claim. Its lock is never held around SendInput.
type injectedPresses struct {
	mu    sync.Mutex
	times map[uint32][]time.Time
}

// add records a press of vk, made now.
func (p *injectedPresses) add(vk uint32, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.times == nil {
		p.times = make(map[uint32][]time.Time)
	}
	t := p.times[vk]
	if len(t) >= 64 { // an expert flooding one key
		t = t[1:]
	}
	p.times[vk] = append(t, now)
}

// claim accounts for the oldest unexpired press of vk, if any.
func (p *injectedPresses) claim(vk uint32, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.times[vk]
	for len(t) > 0 && now.Sub(t[0]) > injectedPressTTL {
		t = t[1:]
	}
	if len(t) == 0 {
		delete(p.times, vk)
		return false
	}
	p.times[vk] = t[1:]
	return true
}

// hotKey is one watch.
type hotKey struct {
	d          *Desktop
	vk         uint32
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
// except presses this Desktop's Key injected (the expert's). For every
// other press onPress runs in a goroutine of its own. isInjected, the
// X11 backend's way of telling the expert's presses, is not used: Key's
// own record tells them (see above).
func (d *Desktop) WatchHotKey(keysym uint32, _ func() bool, onPress func()) (stop func(), err error) {
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
	hk := &hotKey{d: d, vk: uint32(v.vk), onPress: onPress}
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
		if injected && hk.d.hook.injected.claim(hk.vk, time.Now()) {
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
