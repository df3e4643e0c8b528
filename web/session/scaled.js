// A noVNC decoder for Assist's private scaled encoding (rfb/scale.go):
// on a slow link a large area that keeps changing (a video, a screen
// being redrawn) comes as a JPEG of half its size, about a third of the
// bytes. The relay in front of the page (the web app's, in WebAssembly,
// or `assist join`'s) passes these rectangles on as they came, and this
// decoder has the browser decode the picture off the page's thread and
// scale it up to the area, instead of the relay doing both in Go on the
// thread that draws. Once the area stops changing it is refined to exact
// like any JPEG area.

// encodingAssistScaled is EncAssistScaled ("ASSC").
export const encodingAssistScaled = 0x41535343;

// Limits the relay has already checked, checked again: the stream is the
// novice's, and a page must not allocate what a hostile one asks for.
const maxPixels = 1 << 24;
const maxJPEG = (w, h) => 8 * w * h + (64 << 10);

// ScaledDecoder decodes one rectangle per decodeRect call, as noVNC's
// decoders do: false while its bytes have not all come (nothing is
// consumed then), true once the rectangle is queued for drawing. The
// picture is drawn in order with the rest of the update through noVNC's
// render queue: its "frame" step waits for a promise and draws the frame
// at its size, so the frame given is the picture already scaled to the
// area.
export class ScaledDecoder {
  constructor() {
    // Counted for tests and the curious (the pages show them as
    // window.assistViewer.scaled and window.assistExpertPage.scaled).
    this.decoded = 0;
    this.failed = 0;
    // onDrawn, if set, is called after each picture decoded: the page
    // says the picture is reduced while they come (view.js).
    this.onDrawn = null;
  }

  decodeRect(x, y, width, height, sock, display) {
    if (sock.rQwait('scaled rectangle header', 8)) return false;
    const sw = sock.rQshift16();
    const sh = sock.rQshift16();
    const length = sock.rQshift32();
    if (width * height > maxPixels || sw < 1 || sh < 1 || sw > width || sh > height || length > maxJPEG(sw, sh)) {
      throw new Error(`scaled picture of ${sw}x${sh} in ${length} bytes does not fit its ${width}x${height} rectangle`);
    }
    if (sock.rQwait('scaled picture', length, 8)) return false;
    // The Blob copies the bytes out of noVNC's receive queue.
    const jpeg = new Blob([sock.rQshiftBytes(length, false)], { type: 'image/jpeg' });
    const pending = { ready: false, frame: null, promise: null };
    pending.promise = scaledUp(jpeg, width, height).then(
      (bitmap) => {
        this.decoded++;
        if (this.onDrawn) this.onDrawn();
        return bitmap;
      },
      (err) => {
        // A picture the browser cannot decode leaves the area as it
        // was until the next change or its refinement; the session goes on.
        this.failed++;
        console.warn(`assist: a scaled picture of ${sw}x${sh} could not be decoded: ${err}`);
        return blankFrame();
      },
    ).then((bitmap) => {
      pending.frame = bitmap;
      pending.ready = true;
    });
    display.videoFrame(x, y, width, height, pending);
    return true;
  }
}

// blankFrame is what the render queue draws for a picture that could
// not be decoded: a transparent pixel, made without anything that could
// fail in turn (the queue waits for every frame it was given).
function blankFrame() {
  const c = document.createElement('canvas');
  c.width = 1;
  c.height = 1;
  c.close = () => {};
  return c;
}

// scaledUp decodes jpeg and scales it to width×height. Browsers that
// ignore createImageBitmap's resize options, or refuse them, get it
// scaled on a canvas.
export async function scaledUp(jpeg, width, height) {
  const opts = { resizeWidth: width, resizeHeight: height, resizeQuality: 'medium', colorSpaceConversion: 'none', premultiplyAlpha: 'none' };
  let bitmap;
  try {
    bitmap = await createImageBitmap(jpeg, opts);
  } catch {
    bitmap = await createImageBitmap(jpeg); // a picture that is no JPEG fails here too
  }
  if (bitmap.width === width && bitmap.height === height) return bitmap;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'medium';
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return createImageBitmap(canvas);
}
