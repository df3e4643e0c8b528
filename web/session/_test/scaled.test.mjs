// Unit tests of scaled.js: the framing of Assist's scaled rectangles as
// noVNC's decoders see it, byte by byte, and what the decoder refuses.
// The drawing itself (the browser decoding and scaling the picture) is
// checked in headless Chromium by TestBrowserViewerScaled (webview).
// Run by web/expert_script_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScaledDecoder, encodingAssistScaled, scaledUp } from '../scaled.js';

// queue has the receive queue methods of noVNC's Websock the decoder
// uses, with the same semantics (rQwait's goback rewinds).
function queue(bytes) {
  return {
    b: bytes,
    i: 0,
    n: 0, // bytes arrived so far
    rQwait(msg, num, goback) {
      if (this.n - this.i < num) {
        if (goback) {
          if (this.i < goback) throw new Error(`rQwait cannot back up ${goback} bytes`);
          this.i -= goback;
        }
        return true;
      }
      return false;
    },
    rQshift16() { const v = (this.b[this.i] << 8) | this.b[this.i + 1]; this.i += 2; return v; },
    rQshift32() { const v = ((this.b[this.i] << 24) >>> 0) + (this.b[this.i + 1] << 16) + (this.b[this.i + 2] << 8) + this.b[this.i + 3]; this.i += 4; return v; },
    rQshiftBytes(len) { const v = this.b.subarray(this.i, this.i + len); this.i += len; return v; },
  };
}

function payload(sw, sh, jpeg) {
  const b = new Uint8Array(8 + jpeg.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, sw);
  v.setUint16(2, sh);
  v.setUint32(4, jpeg.length);
  b.set(jpeg, 8);
  return b;
}

// The browser's parts, as far as the decoder needs them: a bitmap of the
// size asked for, or a decoding error for a picture that is not a JPEG.
globalThis.createImageBitmap = async (src, opts) => {
  if (src instanceof Blob && (await src.arrayBuffer()).byteLength < 2) throw new Error('not a picture');
  return { width: opts?.resizeWidth ?? src.width, height: opts?.resizeHeight ?? src.height, close() {} };
};

test('the encoding is ASSC', () => {
  assert.equal(encodingAssistScaled, 0x41535343);
});

test('waits for every byte, consuming nothing until all came, then queues one frame', async () => {
  const jpeg = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
  const q = queue(payload(40, 30, jpeg));
  const frames = [];
  const display = { videoFrame: (x, y, w, h, f) => frames.push({ x, y, w, h, f }) };
  const d = new ScaledDecoder();
  let drawn = 0;
  d.onDrawn = () => drawn++;
  for (q.n = 0; q.n < q.b.length; q.n++) {
    assert.equal(d.decodeRect(8, 16, 80, 60, q, display), false, `with ${q.n} bytes`);
    assert.equal(q.i, 0, `consumed ${q.i} of ${q.n} bytes`);
  }
  assert.equal(d.decodeRect(8, 16, 80, 60, q, display), true);
  assert.equal(q.i, q.b.length);
  assert.equal(frames.length, 1);
  const { x, y, w, h, f } = frames[0];
  assert.deepEqual([x, y, w, h], [8, 16, 80, 60]);
  assert.equal(f.ready, false);
  await f.promise;
  assert.equal(f.ready, true);
  assert.deepEqual([f.frame.width, f.frame.height], [80, 60], 'the picture is scaled to the area');
  assert.equal(d.decoded, 1);
  assert.equal(drawn, 1, 'onDrawn tells the page');
});

test('a picture the browser cannot decode is counted and drawn as nothing', async () => {
  const q = queue(payload(2, 2, new Uint8Array([7])));
  q.n = q.b.length;
  const frames = [];
  const d = new ScaledDecoder();
  let drawn = 0;
  d.onDrawn = () => drawn++;
  const warn = console.warn;
  console.warn = () => {};
  globalThis.document = { createElement: () => ({ width: 0, height: 0 }) };
  try {
    assert.equal(d.decodeRect(0, 0, 4, 4, q, { videoFrame: (x, y, w, h, f) => frames.push(f) }), true);
    await frames[0].promise;
  } finally {
    console.warn = warn;
    delete globalThis.document;
  }
  assert.equal(typeof frames[0].frame.close, 'function', 'the render queue closes what it drew');
  assert.equal(frames[0].ready, true, 'the render queue goes on');
  assert.deepEqual([frames[0].frame.width, frames[0].frame.height], [1, 1]);
  assert.equal(d.failed, 1);
  assert.equal(d.decoded, 0);
  assert.equal(drawn, 0, 'nothing reduced was drawn');
});

test('refuses what does not fit its rectangle', () => {
  for (const [name, w, h, bytes] of [
    ['zero width', 10, 10, payload(0, 5, new Uint8Array(4))],
    ['zero height', 10, 10, payload(5, 0, new Uint8Array(4))],
    ['wider than the area', 10, 10, payload(11, 5, new Uint8Array(4))],
    ['taller than the area', 10, 10, payload(5, 11, new Uint8Array(4))],
    ['more bytes than any picture', 10, 10, Uint8Array.of(0, 2, 0, 2, 0x7f, 0, 0, 0)],
    ['an area over the limit', 8192, 4096, payload(1, 1, new Uint8Array(4))],
  ]) {
    const q = queue(bytes);
    q.n = bytes.length;
    assert.throws(() => new ScaledDecoder().decodeRect(0, 0, w, h, q, { videoFrame() { assert.fail(name); } }), /does not fit/, name);
  }
});

test('a browser that refuses or ignores the resize options gets the picture scaled on a canvas', async () => {
  const jpeg = new Blob([Uint8Array.of(0xff, 0xd8, 0xff, 0xd9)]);
  const drawn = [];
  globalThis.document = {
    createElement: (tag) => {
      assert.equal(tag, 'canvas');
      return { width: 0, height: 0, getContext: () => ({ drawImage: (...args) => drawn.push(args.slice(1)) }) };
    },
  };
  const real = globalThis.createImageBitmap;
  try {
    for (const refuses of [true, false]) {
      drawn.length = 0;
      // The picture decodes at its own size, 20x15.
      globalThis.createImageBitmap = async (src, opts) => {
        if (opts && refuses) throw new TypeError('unknown option');
        return { width: src.width ?? 20, height: src.height ?? 15, close() {} };
      };
      const bitmap = await scaledUp(jpeg, 40, 30);
      assert.deepEqual([bitmap.width, bitmap.height], [40, 30], `refuses: ${refuses}`);
      assert.deepEqual(drawn, [[0, 0, 40, 30]], `refuses: ${refuses}`);
    }
  } finally {
    globalThis.createImageBitmap = real;
    delete globalThis.document;
  }
});
