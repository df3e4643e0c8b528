package windows

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

// The Win32 calls x/sys/windows does not wrap. Each is looked up on first
// use, so a missing one (an old Windows, Wine) fails that call, not the
// program's start.
var (
	user32 = windows.NewLazySystemDLL("user32.dll")
	gdi32  = windows.NewLazySystemDLL("gdi32.dll")

	procGetSystemMetrics              = user32.NewProc("GetSystemMetrics")
	procGetDC                         = user32.NewProc("GetDC")
	procReleaseDC                     = user32.NewProc("ReleaseDC")
	procGetCursorInfo                 = user32.NewProc("GetCursorInfo")
	procGetCursorPos                  = user32.NewProc("GetCursorPos")
	procGetIconInfo                   = user32.NewProc("GetIconInfo")
	procLoadCursorW                   = user32.NewProc("LoadCursorW")
	procSendInput                     = user32.NewProc("SendInput")
	procMapVirtualKeyW                = user32.NewProc("MapVirtualKeyW")
	procVkKeyScanW                    = user32.NewProc("VkKeyScanW")
	procOpenClipboard                 = user32.NewProc("OpenClipboard")
	procCloseClipboard                = user32.NewProc("CloseClipboard")
	procEmptyClipboard                = user32.NewProc("EmptyClipboard")
	procGetClipboardData              = user32.NewProc("GetClipboardData")
	procSetClipboardData              = user32.NewProc("SetClipboardData")
	procGetClipboardSequenceNumber    = user32.NewProc("GetClipboardSequenceNumber")
	procSetWindowsHookExW             = user32.NewProc("SetWindowsHookExW")
	procUnhookWindowsHookEx           = user32.NewProc("UnhookWindowsHookEx")
	procCallNextHookEx                = user32.NewProc("CallNextHookEx")
	procGetMessageW                   = user32.NewProc("GetMessageW")
	procPostThreadMessageW            = user32.NewProc("PostThreadMessageW")
	procPeekMessageW                  = user32.NewProc("PeekMessageW")
	procSetProcessDpiAwarenessContext = user32.NewProc("SetProcessDpiAwarenessContext")
	procSetProcessDPIAware            = user32.NewProc("SetProcessDPIAware")

	procCreateCompatibleDC = gdi32.NewProc("CreateCompatibleDC")
	procDeleteDC           = gdi32.NewProc("DeleteDC")
	procCreateDIBSection   = gdi32.NewProc("CreateDIBSection")
	procSelectObject       = gdi32.NewProc("SelectObject")
	procDeleteObject       = gdi32.NewProc("DeleteObject")
	procBitBlt             = gdi32.NewProc("BitBlt")
	procGdiFlush           = gdi32.NewProc("GdiFlush")
	procGetDIBits          = gdi32.NewProc("GetDIBits")
	procGetObjectW         = gdi32.NewProc("GetObjectW")

	kernel32         = windows.NewLazySystemDLL("kernel32.dll")
	procGlobalAlloc  = kernel32.NewProc("GlobalAlloc")
	procGlobalFree   = kernel32.NewProc("GlobalFree")
	procGlobalLock   = kernel32.NewProc("GlobalLock")
	procGlobalUnlock = kernel32.NewProc("GlobalUnlock")
	procGlobalSize   = kernel32.NewProc("GlobalSize")
)

const (
	smXVirtualScreen  = 76
	smYVirtualScreen  = 77
	smCXVirtualScreen = 78
	smCYVirtualScreen = 79

	srcCopy    = 0x00CC0020
	captureBlt = 0x40000000

	dibRGBColors = 0
	biRGB        = 0

	cursorShowing = 0x00000001
	idcArrow      = 32512

	inputMouse    = 0
	inputKeyboard = 1

	mouseeventfMove       = 0x0001
	mouseeventfLeftDown   = 0x0002
	mouseeventfLeftUp     = 0x0004
	mouseeventfRightDown  = 0x0008
	mouseeventfRightUp    = 0x0010
	mouseeventfMiddleDown = 0x0020
	mouseeventfMiddleUp   = 0x0040
	mouseeventfWheel      = 0x0800
	mouseeventfHWheel     = 0x1000
	mouseeventfVirtualDsk = 0x4000
	mouseeventfAbsolute   = 0x8000
	wheelDelta            = 120

	keyeventfExtendedKey = 0x0001
	keyeventfKeyUp       = 0x0002
	keyeventfUnicode     = 0x0004

	mapvkVKToVSC = 0

	cfUnicodeText = 13
	gmemMoveable  = 0x0002

	whKeyboardLL  = 13
	hcAction      = 0
	wmKeyDown     = 0x0100
	wmKeyUp       = 0x0101
	wmSysKeyDown  = 0x0104
	wmSysKeyUp    = 0x0105
	wmQuit        = 0x0012
	wmApp         = 0x8000
	llkhfInjected = 0x00000010
	pmNoRemove    = 0x0000
	vkEscape      = 0x1B

	// DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2
	dpiPerMonitorAwareV2 = ^uintptr(3) // (DPI_AWARENESS_CONTEXT)-4
)

type point struct{ X, Y int32 }

type cursorInfo struct {
	Size    uint32
	Flags   uint32
	Cursor  windows.Handle
	ScreenX int32
	ScreenY int32
}

type iconInfo struct {
	Icon     int32
	HotX     uint32
	HotY     uint32
	MaskBmp  windows.Handle
	ColorBmp windows.Handle
}

type bitmapInfoHeader struct {
	Size          uint32
	Width         int32
	Height        int32
	Planes        uint16
	BitCount      uint16
	Compression   uint32
	SizeImage     uint32
	XPelsPerMeter int32
	YPelsPerMeter int32
	ClrUsed       uint32
	ClrImportant  uint32
}

// bitmapInfo has room for the two palette entries of a monochrome
// bitmap, which GetDIBits writes after the header.
type bitmapInfo struct {
	Header bitmapInfoHeader
	Colors [2]uint32
}

type bitmap struct {
	Type       int32
	Width      int32
	Height     int32
	WidthBytes int32
	Planes     uint16
	BitsPixel  uint16
	Bits       uintptr
}

// mouseInput and keybdInput are the union members of INPUT; input is
// INPUT itself (40 bytes on 64-bit Windows, 28 on 32-bit).
type mouseInput struct {
	Dx, Dy    int32
	MouseData uint32
	Flags     uint32
	Time      uint32
	Extra     uintptr
}

type keybdInput struct {
	Vk    uint16
	Scan  uint16
	Flags uint32
	Time  uint32
	Extra uintptr
}

type input struct {
	Type  uint32
	Mouse mouseInput // the largest member; keyboard input overlays it
}

func mouseEvent(m mouseInput) input { return input{Type: inputMouse, Mouse: m} }

func keyEvent(k keybdInput) input {
	in := input{Type: inputKeyboard}
	*(*keybdInput)(unsafe.Pointer(&in.Mouse)) = k
	return in
}

type kbdLLHookStruct struct {
	VkCode    uint32
	ScanCode  uint32
	Flags     uint32
	Time      uint32
	ExtraInfo uintptr
}

type msg struct {
	Hwnd    windows.Handle
	Message uint32
	WParam  uintptr
	LParam  uintptr
	Time    uint32
	Pt      point
	Private uint32
}

func systemMetric(i int) int {
	r, _, _ := procGetSystemMetrics.Call(uintptr(i))
	return int(int32(r))
}

// ptrTo turns an address Windows returned (memory it owns, outside Go's
// heap) into a pointer. Going through the variable's address keeps vet's
// uintptr check quiet about what is here deliberate.
func ptrTo[T any](addr uintptr) *T {
	return *(**T)(unsafe.Pointer(&addr))
}

// utf16z is text as NUL-terminated UTF-16, or an error if it holds a NUL.
func utf16z(text string) ([]uint16, error) { return windows.UTF16FromString(text) }
