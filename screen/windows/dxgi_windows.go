package windows

import (
	"errors"
	"fmt"
	"image"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// DXGI Desktop Duplication, over COM vtables (no cgo). The method
// indices and the structures' layouts were checked against MinGW-w64's
// dxgi1_2.h and d3d11.h (offsetof, under Wine); the calls themselves
// have not run on a real Windows yet, since Wine does not implement
// duplication, which is why it is chosen with Options.Capture only.

var (
	d3d11                 = windows.NewLazySystemDLL("d3d11.dll")
	procD3D11CreateDevice = d3d11.NewProc("D3D11CreateDevice")

	iidIDXGIDevice     = windows.GUID{Data1: 0x54ec77fa, Data2: 0x1377, Data3: 0x44e6, Data4: [8]byte{0x8c, 0x32, 0x88, 0xfd, 0x5f, 0x44, 0xc8, 0x4c}}
	iidIDXGIOutput1    = windows.GUID{Data1: 0x00cddea8, Data2: 0x939b, Data3: 0x4b83, Data4: [8]byte{0xa3, 0x40, 0xa6, 0x85, 0x22, 0x66, 0x66, 0xcc}}
	iidID3D11Texture2D = windows.GUID{Data1: 0x6f15aaf2, Data2: 0xd208, Data3: 0x4e89, Data4: [8]byte{0x9a, 0xb4, 0x48, 0x95, 0x35, 0xd3, 0x4f, 0x9c}}
)

// Vtable indices (IUnknown's three first).
const (
	vQueryInterface = 0
	vRelease        = 2

	vDXGIDeviceGetAdapter   = 7
	vAdapterEnumOutputs     = 7
	vOutputGetDesc          = 7
	vOutput1DuplicateOutput = 22
	vDuplAcquireNextFrame   = 8
	vDuplGetFrameDirtyRects = 9
	vDuplGetFrameMoveRects  = 10
	vDuplReleaseFrame       = 14
	vDeviceCreateTexture2D  = 5
	vContextMap             = 14
	vContextUnmap           = 15
	vContextCopyResource    = 47
)

const (
	d3dDriverTypeHardware = 1
	d3d11CreateBGRA       = 0x20
	d3d11SDKVersion       = 7
	d3d11UsageStaging     = 3
	d3d11CPUAccessRead    = 0x20000
	d3d11MapRead          = 1
	dxgiFormatB8G8R8A8    = 87

	dxgiErrWaitTimeout = 0x887A0027
	dxgiErrAccessLost  = 0x887A0026
	dxgiErrNotFound    = 0x887A0002
	dxgiErrMoreData    = 0x887A0003
)

// errAccessLost is DXGI_ERROR_ACCESS_LOST: the desktop switched (a UAC
// prompt, the lock screen, a mode change); the duplication must be made
// again.
var errAccessLost = errors.New("windows: desktop duplication lost its access (desktop switch or mode change)")

type outputDesc struct {
	DeviceName [32]uint16
	Coords     [4]int32
	Attached   int32
	Rotation   uint32
	Monitor    uintptr
}

type frameInfo struct {
	LastPresentTime     int64
	LastMouseUpdateTime int64
	AccumulatedFrames   uint32
	RectsCoalesced      int32
	ProtectedMaskedOut  int32
	PointerX, PointerY  int32
	PointerVisible      int32
	TotalMetadataSize   uint32
	PointerShapeSize    uint32
}

type texture2DDesc struct {
	Width, Height, MipLevels, ArraySize uint32
	Format                              uint32
	SampleCount, SampleQuality          uint32
	Usage, BindFlags, CPUAccess, Misc   uint32
}

type mappedSubresource struct {
	Data       uintptr
	RowPitch   uint32
	DepthPitch uint32
}

// comCall calls method i of the COM object obj.
func comCall(obj uintptr, i int, args ...uintptr) uintptr {
	vtbl := *ptrTo[uintptr](obj)
	fn := *ptrTo[uintptr](vtbl + uintptr(i)*unsafe.Sizeof(uintptr(0)))
	r, _, _ := syscall.SyscallN(fn, append([]uintptr{obj}, args...)...)
	return r
}

func comRelease(obj uintptr) {
	if obj != 0 {
		comCall(obj, vRelease)
	}
}

func hrErr(what string, hr uintptr) error {
	if int32(hr) >= 0 {
		return nil
	}
	return fmt.Errorf("windows: %s: HRESULT %#x", what, uint32(hr))
}

// duplicator duplicates the one output that covers the whole virtual
// screen, keeping the latest frame in memory for Grab.
type duplicator struct {
	device, context, dupl, staging uintptr
	size                           image.Point
	frame                          []byte // BGRX, stride 4*size.X
	meta                           []byte
	fresh                          bool // no frame copied yet
}

// newDuplicator sets duplication up for the output at rect (the virtual
// screen). It fails when no single unrotated output covers it: several
// monitors are captured with GDI.
func newDuplicator(rect image.Rectangle) (_ *duplicator, err error) {
	if err := procD3D11CreateDevice.Find(); err != nil {
		return nil, fmt.Errorf("windows: no Direct3D 11: %w", err)
	}
	d := &duplicator{size: rect.Size(), fresh: true}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	var level uint32
	hr, _, _ := procD3D11CreateDevice.Call(0, d3dDriverTypeHardware, 0, d3d11CreateBGRA, 0, 0, d3d11SDKVersion,
		uintptr(unsafe.Pointer(&d.device)), uintptr(unsafe.Pointer(&level)), uintptr(unsafe.Pointer(&d.context)))
	if err := hrErr("D3D11CreateDevice", hr); err != nil {
		return nil, err
	}
	var dxgiDevice, adapter uintptr
	if err := hrErr("QueryInterface(IDXGIDevice)", comCall(d.device, vQueryInterface, uintptr(unsafe.Pointer(&iidIDXGIDevice)), uintptr(unsafe.Pointer(&dxgiDevice)))); err != nil {
		return nil, err
	}
	hr = comCall(dxgiDevice, vDXGIDeviceGetAdapter, uintptr(unsafe.Pointer(&adapter)))
	comRelease(dxgiDevice)
	if err := hrErr("IDXGIDevice.GetAdapter", hr); err != nil {
		return nil, err
	}
	defer comRelease(adapter)
	var output uintptr
	for i := uintptr(0); ; i++ {
		var o uintptr
		hr := comCall(adapter, vAdapterEnumOutputs, i, uintptr(unsafe.Pointer(&o)))
		if uint32(hr) == dxgiErrNotFound {
			break
		}
		if err := hrErr("IDXGIAdapter.EnumOutputs", hr); err != nil {
			return nil, err
		}
		var desc outputDesc
		comCall(o, vOutputGetDesc, uintptr(unsafe.Pointer(&desc)))
		r := image.Rect(int(desc.Coords[0]), int(desc.Coords[1]), int(desc.Coords[2]), int(desc.Coords[3]))
		if desc.Attached != 0 && r == rect && desc.Rotation <= 1 {
			output = o
			break
		}
		comRelease(o)
	}
	if output == 0 {
		return nil, errors.New("windows: no single unrotated display covers the whole desktop")
	}
	var output1 uintptr
	hr = comCall(output, vQueryInterface, uintptr(unsafe.Pointer(&iidIDXGIOutput1)), uintptr(unsafe.Pointer(&output1)))
	comRelease(output)
	if err := hrErr("QueryInterface(IDXGIOutput1)", hr); err != nil {
		return nil, err
	}
	hr = comCall(output1, vOutput1DuplicateOutput, d.device, uintptr(unsafe.Pointer(&d.dupl)))
	comRelease(output1)
	if err := hrErr("IDXGIOutput1.DuplicateOutput", hr); err != nil {
		return nil, err
	}
	desc := texture2DDesc{
		Width: uint32(d.size.X), Height: uint32(d.size.Y), MipLevels: 1, ArraySize: 1,
		Format: dxgiFormatB8G8R8A8, SampleCount: 1, Usage: d3d11UsageStaging, CPUAccess: d3d11CPUAccessRead,
	}
	if err := hrErr("ID3D11Device.CreateTexture2D", comCall(d.device, vDeviceCreateTexture2D, uintptr(unsafe.Pointer(&desc)), 0, uintptr(unsafe.Pointer(&d.staging)))); err != nil {
		return nil, err
	}
	d.frame = make([]byte, 4*d.size.X*d.size.Y)
	return d, nil
}

func (d *duplicator) close() {
	comRelease(d.staging)
	comRelease(d.dupl)
	comRelease(d.context)
	comRelease(d.device)
	d.staging, d.dupl, d.context, d.device = 0, 0, 0, 0
}

// next waits up to timeoutMs for a new frame, copies it into d.frame
// and returns its damage; none (and no error) when the wait timed out or
// only the pointer moved.
func (d *duplicator) next(timeoutMs uint32) ([]image.Rectangle, error) {
	var info frameInfo
	var resource uintptr
	hr := comCall(d.dupl, vDuplAcquireNextFrame, uintptr(timeoutMs), uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&resource)))
	switch uint32(hr) {
	case dxgiErrWaitTimeout:
		return nil, nil
	case dxgiErrAccessLost:
		return nil, errAccessLost
	}
	if err := hrErr("AcquireNextFrame", hr); err != nil {
		return nil, err
	}
	defer comCall(d.dupl, vDuplReleaseFrame)
	defer comRelease(resource)
	if info.LastPresentTime == 0 {
		return nil, nil // the pointer moved; the image did not
	}
	bounds := image.Rectangle{Max: d.size}
	damage := []image.Rectangle{bounds}
	if !d.fresh && info.TotalMetadataSize > 0 {
		if n := int(info.TotalMetadataSize); len(d.meta) < n {
			d.meta = make([]byte, n)
		}
		var moveLen, dirtyLen uint32
		hr1 := comCall(d.dupl, vDuplGetFrameMoveRects, uintptr(len(d.meta)), uintptr(unsafe.Pointer(&d.meta[0])), uintptr(unsafe.Pointer(&moveLen)))
		if int32(hr1) >= 0 && int(moveLen) <= len(d.meta) {
			rest := d.meta[moveLen:]
			var hr2 uintptr // no room left: no dirty rectangles
			if len(rest) > 0 {
				hr2 = comCall(d.dupl, vDuplGetFrameDirtyRects, uintptr(len(rest)), uintptr(unsafe.Pointer(&rest[0])), uintptr(unsafe.Pointer(&dirtyLen)))
			}
			if int32(hr2) >= 0 && int(dirtyLen) <= len(rest) {
				damage = frameDamage(d.meta[:moveLen], rest[:dirtyLen], bounds)
			}
		}
	}
	var tex uintptr
	if err := hrErr("QueryInterface(ID3D11Texture2D)", comCall(resource, vQueryInterface, uintptr(unsafe.Pointer(&iidID3D11Texture2D)), uintptr(unsafe.Pointer(&tex)))); err != nil {
		return nil, err
	}
	comCall(d.context, vContextCopyResource, d.staging, tex)
	comRelease(tex)
	var m mappedSubresource
	if err := hrErr("ID3D11DeviceContext.Map", comCall(d.context, vContextMap, d.staging, 0, d3d11MapRead, 0, uintptr(unsafe.Pointer(&m)))); err != nil {
		return nil, err
	}
	n := 4 * d.size.X
	if int(m.RowPitch) < n {
		comCall(d.context, vContextUnmap, d.staging, 0)
		return nil, fmt.Errorf("windows: duplicated rows of %d bytes, want at least %d", m.RowPitch, n)
	}
	src := unsafe.Slice(ptrTo[byte](m.Data), int(m.RowPitch)*(d.size.Y-1)+n)
	for y := range d.size.Y {
		copy(d.frame[y*n:(y+1)*n], src[y*int(m.RowPitch):])
	}
	comCall(d.context, vContextUnmap, d.staging, 0)
	d.fresh = false
	return damage, nil
}
