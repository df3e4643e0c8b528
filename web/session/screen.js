// The novice's desktop in noVNC, set up the same way for both entry
// points: view only until control is granted, the clipboard let through
// while only viewing when the novice shares it, 1:1 or fit-to-window, and
// the special keys.
import RFB from '../novnc/core/rfb.js';
import { specialKeys } from './words.js';
import { ScaledDecoder, encodingAssistScaled } from './scaled.js';

// openScreen shows the desktop behind channel (a WebSocket URL or a
// WebSocket-like object) in target. onClipboard receives the text the
// novice copies while the clipboard is shared.
export function openScreen(target, channel, { scale = 'fit', onClipboard } = {}) {
  const r = new RFB(target, channel, { shared: true, wsProtocols: ['binary'] });
  addScaledDecoder(r);
  r.resizeSession = false;
  r.viewOnly = true;
  r.background = '#20242a';
  setScale(r, scale);
  allowClipboardWhileViewOnly(r);
  if (onClipboard) r.addEventListener('clipboard', (e) => onClipboard(e.detail.text));
  return r;
}

// addScaledDecoder lets r draw Assist's scaled rectangles (scaled.js),
// which the relay in front of the page passes on. noVNC (1.7.0) has no
// way to add a decoder but its private _decoders table, which it looks
// each rectangle's encoding up in (TestBrowserScaled in webview fails if
// an upgrade breaks this). r.assistScaled counts the pictures drawn.
function addScaledDecoder(r) {
  if (!r._decoders) return;
  const d = new ScaledDecoder();
  r._decoders[encodingAssistScaled] = d;
  r.assistScaled = d;
}

// setScale: "fit" scales the desktop to the window (the whole screen in
// view, text blurred when it is shrunk); "1:1" shows every pixel as it is
// on the other computer, with scroll bars when it does not fit, and asks
// for lossless pictures: noVNC always asks for JPEG, which smears text
// wherever an update also covers a photo or a gradient.
export function setScale(r, scale) {
  const fit = scale === 'fit';
  r.scaleViewport = fit;
  r.clipViewport = !fit;
  setLossless(r, !fit);
}

// noVNC (1.7.0) has no setting for lossless pictures: it always sends a
// JPEG quality level, and Assist's RFB server (like TigerVNC's) uses JPEG
// only when the viewer sends one. So SetEncodings messages of a viewer
// that wants lossless pictures go out without the quality level, and a
// switch asks for the whole screen again, so nothing JPEG stays. This
// uses noVNC's private _sock, _sendEncodings and _fb* fields (the 1:1
// test in cmd/assist TestExpertPage fails if an upgrade breaks it).
const qualityLevels = (e) => e >= -32 && e <= -23;
const losslessSocks = new WeakSet();
let encodingsWrapped = false;

function setLossless(r, on) {
  if (!encodingsWrapped) {
    encodingsWrapped = true;
    const send = RFB.messages.clientEncodings;
    RFB.messages.clientEncodings = function (sock, encodings) {
      return send.call(this, sock, losslessSocks.has(sock) ? encodings.filter((e) => !qualityLevels(e)) : encodings);
    };
  }
  const sock = r._sock;
  if (!sock || losslessSocks.has(sock) === on) return;
  if (on) losslessSocks.add(sock);
  else losslessSocks.delete(sock);
  if (r._rfbConnectionState !== 'connected' || typeof r._sendEncodings !== 'function') return;
  r._sendEncodings();
  RFB.messages.fbUpdateRequest(sock, false, 0, 0, r._fbWidth, r._fbHeight);
}

// The clipboard is a right of its own: the novice may share it with an
// expert who only views. noVNC (1.7.0) ignores clipboard messages while
// viewOnly, which here only means "no control", so they are let through
// with viewOnly lifted for exactly their handling (the private field, not
// the setter, which would grab the keyboard). The novice's side sends and
// accepts clipboard text only while the clipboard is shared.
// (TestClipboardBrowserViewer and TestBrowserExpert/clipboard fail if a
// noVNC upgrade breaks this.)
function allowClipboardWhileViewOnly(r) {
  const handle = r._handleServerCutText;
  if (typeof handle !== 'function') return;
  r._handleServerCutText = function () {
    return withInput(this, () => handle.call(this));
  };
}

function withInput(r, fn) {
  const viewOnly = r._viewOnly;
  r._viewOnly = false;
  try {
    return fn();
  } finally {
    r._viewOnly = viewOnly;
  }
}

// pasteToNovice puts text on the novice's clipboard (only while shared:
// the novice's side drops it otherwise).
export function pasteToNovice(r, text) {
  withInput(r, () => r.clipboardPasteFrom(text));
}

// sendSpecial sends one of words.specialKeys by id; noVNC drops it unless
// the expert has control. It returns whether the key was known.
export function sendSpecial(r, id) {
  const k = specialKeys.find((s) => s.id === id);
  if (!k) return false;
  const held = [];
  for (const [keysym, code, hold] of k.keys) {
    if (hold) {
      r.sendKey(keysym, code, true);
      held.push([keysym, code]);
    } else {
      r.sendKey(keysym, code);
    }
  }
  for (const [keysym, code] of held.reverse()) r.sendKey(keysym, code, false);
  return true;
}
