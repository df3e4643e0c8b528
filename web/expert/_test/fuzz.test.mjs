// A bounded, seeded fuzz of the parsers of untrusted input in signal.js:
// whatever the server or the peer sends, they return a checked message or
// throw SignalError, never anything else (a TypeError would escape the
// page's error handling and leave it stuck).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignalError, parseSignal, parseServerMessage, parseCandidateLine, encodeSignal } from '../signal.js';

// rand is a small deterministic PRNG (mulberry32), so a failure repeats.
function rand(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seeds = [
  '{"type":"offer","sdp":"v=0\\r\\n"}',
  '{"type":"candidate","candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}',
  '{"type":"end-of-candidates"}',
  '{"type":"paired","session":"s","ice":[{"urls":["stun:1.2.3.4:3478"],"username":"u","credential":"c"}]}',
  '{"type":"relay","data":"e30="}',
  '{"type":"bye","reason":"auth-failed"}',
  '{"type":"peer-left"}',
  '{"type":"error","code":"offline","message":"m"}',
];
const pieces = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '1e999', '-0', '"__proto__"', '"constructor"', '"type"', '"\\u0000"', '\\', 'é', '\ud800', ' '];

function mutate(r, s) {
  let out = s;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (out.length + 1));
    switch (Math.floor(r() * 4)) {
      case 0: // delete a run
        out = out.slice(0, at) + out.slice(at + Math.floor(r() * 8));
        break;
      case 1: // insert a piece of JSON
        out = out.slice(0, at) + pieces[Math.floor(r() * pieces.length)] + out.slice(at);
        break;
      case 2: // replace a character
        out = out.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x300)) + out.slice(at + 1);
        break;
      default: // repeat a run
        out = out.slice(0, at) + out.slice(at, at + 16).repeat(1 + Math.floor(r() * 4)) + out.slice(at);
    }
  }
  return out;
}

function onlySignalErrors(f, input) {
  try {
    f(input);
  } catch (e) {
    if (!(e instanceof SignalError)) assert.fail(`${f.name}(${JSON.stringify(input).slice(0, 200)}) threw ${e.name}: ${e.message}`);
  }
}

test('the parsers throw only SignalError, whatever they are given', () => {
  const r = rand(20261124);
  for (let i = 0; i < 20000; i++) {
    const text = mutate(r, seeds[i % seeds.length]);
    onlySignalErrors(parseServerMessage, text);
    onlySignalErrors(parseSignal, Buffer.from(text, 'utf8').toString('base64'));
    onlySignalErrors(parseSignal, text);
    const c = parseCandidateLine(text);
    assert.ok(c === null || (Number.isInteger(c.port) && c.port <= 65535), `parseCandidateLine(${JSON.stringify(text)})`);
  }
  assert.equal(Object.prototype.type, undefined, 'Object.prototype was polluted');
});

test('what parses, parses again the same after encoding', () => {
  const r = rand(7);
  let parsed = 0;
  for (let i = 0; i < 20000; i++) {
    const text = mutate(r, seeds[i % 3]);
    let m;
    try {
      m = parseSignal(Buffer.from(text, 'utf8').toString('base64'));
    } catch {
      continue;
    }
    parsed++;
    assert.deepEqual(parseSignal(encodeSignal(m)), m);
  }
  assert.ok(parsed > 0, 'no mutation parsed: the fuzz explores nothing valid');
});
