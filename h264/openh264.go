//go:build openh264 && cgo

package h264

/*
#cgo LDFLAGS: -lopenh264
#include <stdlib.h>
#include <string.h>
#include <wels/codec_api.h>

// BT.601 limited range, 8.8 fixed point, from BGRX.
static void bgrx_to_i420(const unsigned char *src, int stride, int w, int h,
		unsigned char *y, unsigned char *u, unsigned char *v) {
	int cw = w / 2;
	for (int j = 0; j < h; j += 2) {
		const unsigned char *r0 = src + (size_t)j * stride;
		const unsigned char *r1 = r0 + stride;
		unsigned char *y0 = y + (size_t)j * w, *y1 = y0 + w;
		unsigned char *uu = u + (size_t)(j / 2) * cw, *vv = v + (size_t)(j / 2) * cw;
		for (int i = 0; i < w; i += 2) {
			int sb = 0, sg = 0, sr = 0;
			const unsigned char *p[4] = {r0 + 4 * i, r0 + 4 * i + 4, r1 + 4 * i, r1 + 4 * i + 4};
			unsigned char *q[4] = {y0 + i, y0 + i + 1, y1 + i, y1 + i + 1};
			for (int k = 0; k < 4; k++) {
				int b = p[k][0], g = p[k][1], r = p[k][2];
				*q[k] = (unsigned char)((66 * r + 129 * g + 25 * b + 128 + (16 << 8)) >> 8);
				sb += b; sg += g; sr += r;
			}
			// Average of four, then the chroma matrix; rounding built in.
			uu[i / 2] = (unsigned char)((-38 * sr - 74 * sg + 112 * sb + 512 + (128 << 10)) >> 10);
			vv[i / 2] = (unsigned char)((112 * sr - 94 * sg - 18 * sb + 512 + (128 << 10)) >> 10);
		}
	}
}

static inline unsigned char clamp8(int v) { return v < 0 ? 0 : v > 255 ? 255 : (unsigned char)v; }

// BT.601 limited range to BGRX (X = 0), 16.16 fixed point.
static void i420_to_bgrx(const unsigned char *y, int ys, const unsigned char *u,
		const unsigned char *v, int cs, int w, int h, unsigned char *dst, int stride) {
	for (int j = 0; j < h; j++) {
		const unsigned char *yr = y + (size_t)j * ys;
		const unsigned char *ur = u + (size_t)(j / 2) * cs, *vr = v + (size_t)(j / 2) * cs;
		unsigned char *d = dst + (size_t)j * stride;
		for (int i = 0; i < w; i++) {
			int c = 76309 * (yr[i] - 16) + 32768;
			int du = ur[i / 2] - 128, dv = vr[i / 2] - 128;
			d[4 * i + 2] = clamp8((c + 104597 * dv) >> 16);
			d[4 * i + 1] = clamp8((c - 25674 * du - 53278 * dv) >> 16);
			d[4 * i + 0] = clamp8((c + 132201 * du) >> 16);
			d[4 * i + 3] = 0;
		}
	}
}

static int enc_create(ISVCEncoder **e, int w, int h, int qp, float fps) {
	if (WelsCreateSVCEncoder(e) != 0 || *e == NULL)
		return -1;
	ISVCEncoder *enc = *e;
	int quiet = WELS_LOG_QUIET;
	(*enc)->SetOption(enc, ENCODER_OPTION_TRACE_LEVEL, &quiet);
	SEncParamExt p;
	memset(&p, 0, sizeof p);
	(*enc)->GetDefaultParams(enc, &p);
	p.iUsageType = CAMERA_VIDEO_REAL_TIME;
	p.iComplexityMode = LOW_COMPLEXITY;
	p.iPicWidth = w;
	p.iPicHeight = h;
	p.iRCMode = RC_OFF_MODE;
	p.fMaxFrameRate = fps;
	p.iTemporalLayerNum = 1;
	p.iSpatialLayerNum = 1;
	p.uiIntraPeriod = 0;
	p.iNumRefFrame = 1;
	p.eSpsPpsIdStrategy = CONSTANT_ID;
	p.bPrefixNalAddingCtrl = false;
	p.iEntropyCodingModeFlag = 0;
	p.bEnableFrameSkip = false;
	p.iMinQp = qp;
	p.iMaxQp = qp;
	p.iMultipleThreadIdc = 1;
	p.bEnableDenoise = false;
	p.bEnableBackgroundDetection = false;
	p.bEnableAdaptiveQuant = false;
	p.bEnableSceneChangeDetect = false;
	p.bEnableLongTermReference = false;
	p.iLoopFilterDisableIdc = 0;
	SSpatialLayerConfig *l = &p.sSpatialLayers[0];
	l->iVideoWidth = w;
	l->iVideoHeight = h;
	l->fFrameRate = fps;
	l->iSpatialBitrate = p.iTargetBitrate;
	l->iMaxSpatialBitrate = UNSPECIFIED_BIT_RATE;
	l->uiProfileIdc = PRO_BASELINE;
	l->uiLevelIdc = LEVEL_UNKNOWN;
	l->iDLayerQp = qp;
	l->sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
	l->bVideoSignalTypePresent = true;
	l->uiVideoFormat = 5; // unspecified
	l->bFullRange = false;
	l->bColorDescriptionPresent = true;
	l->uiColorPrimaries = CP_BT709;
	l->uiTransferCharacteristics = TRC_IEC61966_2_1;
	l->uiColorMatrix = CM_SMPTE170M;
	if ((*enc)->InitializeExt(enc, &p) != 0)
		return -2;
	int fmt = videoFormatI420;
	(*enc)->SetOption(enc, ENCODER_OPTION_DATAFORMAT, &fmt);
	return 0;
}

// enc_encode encodes one I420 picture; *out points into the encoder's
// own buffer (valid until the next call), *n is its length (0 when the
// encoder skipped the frame).
static int enc_encode(ISVCEncoder *enc, unsigned char *planes, int w, int h, long long ts,
		int idr, unsigned char **out, int *n) {
	if (idr)
		(*enc)->ForceIntraFrame(enc, true);
	SSourcePicture pic;
	memset(&pic, 0, sizeof pic);
	pic.iColorFormat = videoFormatI420;
	pic.iPicWidth = w;
	pic.iPicHeight = h;
	pic.iStride[0] = w;
	pic.iStride[1] = w / 2;
	pic.iStride[2] = w / 2;
	pic.pData[0] = planes;
	pic.pData[1] = planes + (size_t)w * h;
	pic.pData[2] = pic.pData[1] + (size_t)(w / 2) * (h / 2);
	pic.uiTimeStamp = ts;
	SFrameBSInfo info;
	memset(&info, 0, sizeof info);
	int rc = (*enc)->EncodeFrame(enc, &pic, &info);
	if (rc != 0)
		return rc;
	*n = 0;
	*out = NULL;
	if (info.eFrameType == videoFrameTypeSkip || info.iLayerNum == 0)
		return 0;
	// The layers' buffers follow each other in the encoder's one buffer.
	*out = info.sLayerInfo[0].pBsBuf;
	int total = 0;
	for (int i = 0; i < info.iLayerNum; i++) {
		SLayerBSInfo *l = &info.sLayerInfo[i];
		if (l->pBsBuf != *out + total)
			return -100;
		for (int k = 0; k < l->iNalCount; k++)
			total += l->pNalLengthInByte[k];
	}
	*n = total;
	return 0;
}

static void enc_destroy(ISVCEncoder *enc) {
	(*enc)->Uninitialize(enc);
	WelsDestroySVCEncoder(enc);
}

static int dec_create(ISVCDecoder **d) {
	if (WelsCreateDecoder(d) != 0 || *d == NULL)
		return -1;
	ISVCDecoder *dec = *d;
	int quiet = WELS_LOG_QUIET;
	(*dec)->SetOption(dec, DECODER_OPTION_TRACE_LEVEL, &quiet);
	SDecodingParam p;
	memset(&p, 0, sizeof p);
	p.eEcActiveIdc = ERROR_CON_DISABLE;
	p.sVideoProperty.eVideoBsType = VIDEO_BITSTREAM_AVC;
	if ((*dec)->Initialize(dec, &p) != 0)
		return -2;
	return 0;
}

// dec_decode decodes data; when a picture is ready and is w×h it is
// converted into dst and 1 is returned; 0 when no picture is ready;
// negative on errors (-1000 - state for the decoder's error states,
// -2 for a picture of another size).
static int dec_decode(ISVCDecoder *dec, const unsigned char *data, int n,
		int w, int h, unsigned char *dst, int stride) {
	unsigned char *planes[3] = {NULL, NULL, NULL};
	SBufferInfo info;
	memset(&info, 0, sizeof info);
	DECODING_STATE st = (*dec)->DecodeFrameNoDelay(dec, data, n, planes, &info);
	if (st != dsErrorFree)
		return -1000 - (int)st;
	if (info.iBufferStatus != 1)
		return 0;
	SSysMEMBuffer *b = &info.UsrData.sSystemBuffer;
	if (b->iWidth != w || b->iHeight != h || planes[0] == NULL || planes[1] == NULL || planes[2] == NULL)
		return -2;
	i420_to_bgrx(planes[0], b->iStride[0], planes[1], planes[2], b->iStride[1], w, h, dst, stride);
	return 1;
}

static void dec_destroy(ISVCDecoder *dec) {
	(*dec)->Uninitialize(dec);
	WelsDestroyDecoder(dec);
}
*/
import "C"

import (
	"fmt"
	"image"
	"runtime"
	"time"
	"unsafe"

	"github.com/assist-project/assist/screen"
)

// Available reports whether this build has the H.264 codec.
const Available = true

// checkSize reports an error unless w×h is a picture the codec takes:
// even sides (4:2:0 chroma) up to MaxSide.
func checkSize(w, h int) error {
	if w < 16 || h < 16 || w > MaxSide || h > MaxSide || w%2 != 0 || h%2 != 0 {
		return fmt.Errorf("h264: picture size %dx%d: sides must be even, 16..%d", w, h, MaxSide)
	}
	return nil
}

// checkArea reports an error unless r is an area of img whose pixels
// all lie within img.Pix, so that C code may read or write it.
func checkArea(img *screen.Image, r image.Rectangle) error {
	if r.Empty() || !r.In(img.Rect) || img.Stride < 4*img.Rect.Dx() {
		return fmt.Errorf("h264: area %v is empty or not within the image %v", r, img.Rect)
	}
	if end := img.PixOffset(r.Max.X-1, r.Max.Y-1) + 4; end > len(img.Pix) {
		return fmt.Errorf("h264: image buffer of %d bytes is too short for %v", len(img.Pix), r)
	}
	return nil
}

// Encoder turns successive pictures of one fixed size into one H.264
// stream. It is not safe for concurrent use.
type Encoder struct {
	s       *encState
	w, h    int
	start   time.Time
	cleanup runtime.Cleanup
}

// encState is what lives outside the Go heap, apart from Encoder so that
// a cleanup can free it once the Encoder is unreachable.
type encState struct {
	enc    *C.ISVCEncoder
	planes *C.uchar // the I420 picture
}

func (s *encState) free() {
	if s.enc != nil {
		C.enc_destroy(s.enc)
		s.enc = nil
	}
	if s.planes != nil {
		C.free(unsafe.Pointer(s.planes))
		s.planes = nil
	}
}

// NewEncoder returns an encoder for w×h pictures (even sides) at the
// constant quantiser qp (MinQP..MaxQP; 26 is openh264's default, each 6
// halves the step), for pictures arriving up to fps times a second.
func NewEncoder(w, h, qp int, fps float64) (*Encoder, error) {
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	qp = min(max(qp, MinQP), MaxQP)
	s := &encState{}
	var enc *C.ISVCEncoder
	if rc := C.enc_create(&enc, C.int(w), C.int(h), C.int(qp), C.float(fps)); rc != 0 {
		if enc != nil {
			C.enc_destroy(enc)
		}
		return nil, fmt.Errorf("h264: openh264 encoder for %dx%d did not start (%d)", w, h, int(rc))
	}
	s.enc = enc
	s.planes = (*C.uchar)(C.malloc(C.size_t(w * h * 3 / 2)))
	if s.planes == nil {
		s.free()
		return nil, fmt.Errorf("h264: no memory for a %dx%d picture", w, h)
	}
	e := &Encoder{s: s, w: w, h: h, start: time.Now()}
	// A backstop only: the owner should call Close.
	e.cleanup = runtime.AddCleanup(e, func(s *encState) { s.free() }, s)
	return e, nil
}

// Size is the picture size the encoder was made for.
func (e *Encoder) Size() image.Point { return image.Pt(e.w, e.h) }

// Encode appends to dst the stream for area r of img (which must be the
// encoder's size): one access unit, an IDR picture with its parameter
// sets first when idr is set (and always for the first picture). It
// returns dst unchanged if the encoder produced nothing.
func (e *Encoder) Encode(dst []byte, img *screen.Image, r image.Rectangle, idr bool) ([]byte, error) {
	if e.s.enc == nil {
		return dst, fmt.Errorf("h264: encoder is closed")
	}
	if r.Dx() != e.w || r.Dy() != e.h {
		return dst, fmt.Errorf("h264: area %v is not the encoder's %dx%d", r, e.w, e.h)
	}
	if err := checkArea(img, r); err != nil {
		return dst, err
	}
	src := (*C.uchar)(unsafe.Pointer(&img.Pix[img.PixOffset(r.Min.X, r.Min.Y)]))
	C.bgrx_to_i420(src, C.int(img.Stride), C.int(e.w), C.int(e.h), e.s.planes,
		(*C.uchar)(unsafe.Add(unsafe.Pointer(e.s.planes), e.w*e.h)),
		(*C.uchar)(unsafe.Add(unsafe.Pointer(e.s.planes), e.w*e.h+e.w*e.h/4)))
	runtime.KeepAlive(img)
	var out *C.uchar
	var n C.int
	ts := C.longlong(time.Since(e.start).Milliseconds())
	b := C.int(0)
	if idr {
		b = 1
	}
	if rc := C.enc_encode(e.s.enc, e.s.planes, C.int(e.w), C.int(e.h), ts, b, &out, &n); rc != 0 {
		return dst, fmt.Errorf("h264: openh264 could not encode a %dx%d picture (%d)", e.w, e.h, int(rc))
	}
	if n == 0 {
		return dst, nil
	}
	return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(out)), int(n))...), nil
}

// Close frees the encoder. It is safe to call more than once.
func (e *Encoder) Close() {
	e.cleanup.Stop()
	e.s.free()
}

// Decoder decodes one H.264 stream of pictures of one size. It is not
// safe for concurrent use.
type Decoder struct {
	s       *decState
	cleanup runtime.Cleanup
}

type decState struct{ dec *C.ISVCDecoder }

func (s *decState) free() {
	if s.dec != nil {
		C.dec_destroy(s.dec)
		s.dec = nil
	}
}

// NewDecoder returns a decoder.
func NewDecoder() (*Decoder, error) {
	s := &decState{}
	var dec *C.ISVCDecoder
	if rc := C.dec_create(&dec); rc != 0 {
		if dec != nil {
			C.dec_destroy(dec)
		}
		return nil, fmt.Errorf("h264: openh264 decoder did not start (%d)", int(rc))
	}
	s.dec = dec
	d := &Decoder{s: s}
	d.cleanup = runtime.AddCleanup(d, func(s *decState) { s.free() }, s)
	return d, nil
}

// Decode decodes data, one or more NAL units of the stream in Annex B
// form, and draws the picture it completes into area r of fb. It reports
// whether it drew one. Every parameter set in data must announce r's
// size, and so must the decoded picture.
func (d *Decoder) Decode(data []byte, fb *screen.Image, r image.Rectangle) (bool, error) {
	if d.s.dec == nil {
		return false, fmt.Errorf("h264: decoder is closed")
	}
	if err := checkSize(r.Dx(), r.Dy()); err != nil {
		return false, err
	}
	if err := checkArea(fb, r); err != nil {
		return false, err
	}
	sizes, err := PictureSizes(data)
	if err != nil {
		return false, err
	}
	for _, s := range sizes {
		if s != r.Size() {
			return false, fmt.Errorf("h264: stream announces %dx%d pictures for a %dx%d rectangle", s.X, s.Y, r.Dx(), r.Dy())
		}
	}
	if len(data) == 0 {
		return false, nil
	}
	dst := (*C.uchar)(unsafe.Pointer(&fb.Pix[fb.PixOffset(r.Min.X, r.Min.Y)]))
	rc := C.dec_decode(d.s.dec, (*C.uchar)(unsafe.Pointer(&data[0])), C.int(len(data)),
		C.int(r.Dx()), C.int(r.Dy()), dst, C.int(fb.Stride))
	runtime.KeepAlive(data)
	runtime.KeepAlive(fb)
	switch {
	case rc == 1:
		return true, nil
	case rc == 0:
		return false, nil
	case rc == -2:
		return false, fmt.Errorf("h264: decoded picture is not %dx%d", r.Dx(), r.Dy())
	default:
		return false, fmt.Errorf("h264: openh264 could not decode the stream (state %#x)", int(-1000-rc))
	}
}

// Close frees the decoder. It is safe to call more than once.
func (d *Decoder) Close() {
	d.cleanup.Stop()
	d.s.free()
}
