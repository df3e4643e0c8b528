// Unit tests of signal.js: the parsers of what the server and the novice
// send the page. Run by web/expert_js_test.go (node --test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SignalError, Signalling, RemoteCandidates, limits,
  parseSignal, encodeSignal, encodeCandidate, parseServerMessage, parseICEServers, parseCandidateLine,
} from '../signal.js';

// b64 encodes text as the novice's agent does: UTF-8, standard base64.
function b64(text) {
  return Buffer.from(text, 'utf8').toString('base64');
}

const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
const cand = 'candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host';

// rejects asserts that f throws a SignalError("malformed") whose message
// matches re; name says which case failed.
function rejects(f, re, name) {
  assert.throws(f, (e) => {
    assert.ok(e instanceof SignalError, `${name}: threw ${e && e.name}: ${e && e.message}, want a SignalError`);
    assert.equal(e.code, 'malformed', name);
    assert.match(e.message, re, `${name}: message ${JSON.stringify(e.message)}`);
    return true;
  }, `${name}: accepted`);
}

test('parseSignal accepts what rtc sends', () => {
  for (const m of [
    { type: 'offer', sdp },
    { type: 'answer', sdp },
    { type: 'candidate', candidate: cand },
    { type: 'candidate', candidate: cand, sdpMid: '0', sdpMLineIndex: 0 },
    { type: 'candidate', candidate: cand, sdpMLineIndex: 65535 },
    { type: 'end-of-candidates' },
    { type: 'answer', sdp: 'v=0' + 'é'.repeat(100) },
  ]) {
    assert.deepEqual(parseSignal(encodeSignal(m)), m);
  }
});

test('parseSignal rejects malformed, oversized and hostile messages', () => {
  const cases = [
    ['not a string', 42, /not a base64 string/],
    ['null', null, /not a base64 string/],
    ['not base64', '{"type":"offer"}', /not base64/],
    ['URL-safe base64', b64('{"type":"end-of-candidates"}?').replace(/\+/g, '-').replace(/\//g, '_') + '-_', /not base64/],
    ['unpadded base64', 'e30', /not base64/],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]).toString('base64'), /UTF-8/],
    ['empty', '', /not JSON/],
    ['not JSON', b64('{type: offer}'), /not JSON/],
    ['trailing data', b64('{"type":"end-of-candidates"} {}'), /not JSON/],
    ['an array', b64('[{"type":"offer"}]'), /not a JSON object/],
    ['a string', b64('"offer"'), /not a JSON object/],
    ['JSON null', b64('null'), /not a JSON object/],
    ['no type', b64('{"sdp":"v=0"}'), /no type/],
    ['a numeric type', b64('{"type":1}'), /no type/],
    ['unknown type', b64('{"type":"restart"}'), /unknown relayed message type restart/],
    ['type constructor', b64('{"type":"constructor"}'), /unknown relayed message type constructor/],
    ['type __proto__', b64('{"type":"__proto__"}'), /unknown relayed message type __proto__/],
    ['type toString', b64('{"type":"toString"}'), /unknown relayed message type/],
    ['a long unknown type, clipped', b64(JSON.stringify({ type: 'x'.repeat(5000) })), /unknown relayed message type x{32}\.\.\.$/],
    ['an extra field', b64(JSON.stringify({ type: 'offer', sdp, candidate: cand })), /offer carries an unknown field candidate/],
    ['a __proto__ field', b64(`{"type":"end-of-candidates","__proto__":{"polluted":1}}`), /unknown field __proto__/],
    ['offer without sdp', b64('{"type":"offer"}'), /offer has no sdp/],
    ['sdp not a string', b64('{"type":"answer","sdp":["v=0"]}'), /sdp does not start with v=0/],
    ['sdp not SDP', b64(JSON.stringify({ type: 'answer', sdp: 'hello' })), /sdp does not start with v=0/],
    ['sdp too long', b64(JSON.stringify({ type: 'answer', sdp: 'v=0' + 'a'.repeat(limits.maxSDP) })), /sdp is over 32768 bytes/],
    // Bytes, not UTF-16 units: 11000 three-byte characters are 33000 bytes.
    ['sdp too long in bytes', b64(JSON.stringify({ type: 'answer', sdp: 'v=0' + '€'.repeat(11000) })), /sdp is over/],
    ['message too long', b64(JSON.stringify({ type: 'answer', sdp: 'v=0' + 'a'.repeat(limits.maxMessage) })), /over 65536 bytes/],
    ['empty candidate', b64('{"type":"candidate","candidate":""}'), /empty candidate/],
    ['candidate not a string', b64('{"type":"candidate","candidate":7}'), /empty candidate/],
    ['candidate too long', b64(JSON.stringify({ type: 'candidate', candidate: cand + ' x'.repeat(600) })), /candidate is over 1024 bytes/],
    ['candidate smuggling a line', b64(JSON.stringify({ type: 'candidate', candidate: cand + '\r\na=ice-lite' })), /control character/],
    ['candidate with NUL', b64(JSON.stringify({ type: 'candidate', candidate: cand + '\u0000' })), /control character/],
    ['candidate with DEL', b64(JSON.stringify({ type: 'candidate', candidate: cand + '\u007f' })), /control character/],
    ['sdpMid not a string', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMid: 0 })), /sdpMid is not a string/],
    ['sdpMid null', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMid: null })), /sdpMid is not a string/],
    ['sdpMid too long', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMid: 'm'.repeat(33) })), /sdpMid is over 32 bytes/],
    ['sdpMid with a line break', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMid: '0\n' })), /sdpMid holds a control character/],
    ['sdpMLineIndex negative', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMLineIndex: -1 })), /sdpMLineIndex/],
    ['sdpMLineIndex fractional', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMLineIndex: 0.5 })), /sdpMLineIndex/],
    ['sdpMLineIndex too big', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMLineIndex: 65536 })), /sdpMLineIndex/],
    ['sdpMLineIndex a string', b64(JSON.stringify({ type: 'candidate', candidate: cand, sdpMLineIndex: '0' })), /sdpMLineIndex/],
    ['end-of-candidates with a field', b64(JSON.stringify({ type: 'end-of-candidates', sdp })), /unknown field sdp/],
  ];
  for (const [name, data, re] of cases) {
    rejects(() => parseSignal(data), re, name);
  }
  assert.equal(Object.prototype.polluted, undefined, 'a __proto__ field polluted Object.prototype');
});

test('encodeCandidate keeps only the fields rtc accepts', () => {
  const m = encodeCandidate({ candidate: cand, sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'abcd' });
  assert.deepEqual(m, { type: 'candidate', candidate: cand, sdpMid: '0', sdpMLineIndex: 0 });
  assert.deepEqual(encodeCandidate({ candidate: cand, sdpMid: null, sdpMLineIndex: null }), { type: 'candidate', candidate: cand });
  assert.deepEqual(parseSignal(encodeSignal(m)), m);
});

test('parseServerMessage accepts what the server sends', () => {
  const ice = [{ urls: ['stun:127.0.0.1:3478'] }, { urls: ['turn:127.0.0.1:3478?transport=udp', 'turns:example.org:443?transport=tcp'], username: '1700000000:x', credential: 'c2VjcmV0' }];
  assert.deepEqual(parseServerMessage(JSON.stringify({ type: 'paired', session: 'abc-_123', ice })), { type: 'paired', session: 'abc-_123', ice });
  assert.deepEqual(parseServerMessage('{"type":"paired","session":"s","ice":null}'), { type: 'paired', session: 's', ice: [] });
  assert.deepEqual(parseServerMessage('{"type":"relay","data":"e30="}'), { type: 'relay', data: 'e30=' });
  assert.deepEqual(parseServerMessage('{"type":"bye","reason":"auth-failed"}'), { type: 'bye', reason: 'auth-failed' });
  assert.deepEqual(parseServerMessage('{"type":"bye"}'), { type: 'bye', reason: '' });
  assert.deepEqual(parseServerMessage('{"type":"peer-left"}'), { type: 'peer-left' });
  assert.deepEqual(parseServerMessage('{"type":"queued"}'), { type: 'queued' });
  assert.deepEqual(parseServerMessage('{"type":"error","code":"too-many","message":"try again in 6s"}'), { type: 'error', code: 'too-many', message: 'try again in 6s' });
  assert.deepEqual(parseServerMessage('{"type":"error","code":"offline","message":"the novice is not connected"}'), { type: 'error', code: 'offline', message: 'the novice is not connected' });
  // A single URL string is valid RTCIceServer too.
  assert.deepEqual(parseICEServers([{ urls: 'stun:127.0.0.1:1' }]), [{ urls: ['stun:127.0.0.1:1'] }]);
});

test('parseServerMessage rejects malformed, oversized and hostile messages', () => {
  const server = (ice) => JSON.stringify({ type: 'paired', session: 's', ice });
  const cases = [
    ['binary', new ArrayBuffer(4), /binary message/],
    ['oversized', JSON.stringify({ type: 'relay', data: 'A'.repeat(limits.maxServerMessage) }), /over 98304 bytes/],
    ['not JSON', '{"type":', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no type', '{}', /no type/],
    ['unknown type', '{"type":"registered","id":"1","expires":"x"}', /unknown server message type registered/],
    ['type hasOwnProperty', '{"type":"hasOwnProperty"}', /unknown server message type/],
    ['an extra field', '{"type":"peer-left","why":"x"}', /unknown field why/],
    ['queued with a field', '{"type":"queued","position":1}', /unknown field position/],
    // "from" goes to the novice only.
    ['paired with from', '{"type":"paired","session":"s","ice":[],"from":"192.0.2.7"}', /unknown field from/],
    ['paired without ice', '{"type":"paired","session":"s"}', /paired has no ice/],
    ['paired without session', '{"type":"paired","ice":[]}', /paired has no session/],
    ['empty session', '{"type":"paired","session":"","ice":[]}', /empty session/],
    ['session too long', JSON.stringify({ type: 'paired', session: 's'.repeat(65), ice: [] }), /session is over 64 bytes/],
    ['session an object', '{"type":"paired","session":{},"ice":[]}', /session is not a string/],
    ['ice an object', server({ urls: 'stun:x' }), /not an array/],
    ['too many ICE servers', server(Array(9).fill({ urls: 'stun:x' })), /more than 8 ICE servers/],
    ['ICE server null', server([null]), /ICE server 0 is not an object/],
    ['ICE server without urls', server([{ username: 'u' }]), /ICE server 0 has no urls/],
    ['ICE server with an extra field', server([{ urls: 'stun:x', credentialType: 'oauth' }]), /unknown field credentialType/],
    ['ICE urls empty', server([{ urls: [] }]), /1 to 8 URLs/],
    ['ICE urls too many', server([{ urls: Array(9).fill('stun:x') }]), /1 to 8 URLs/],
    ['ICE url not STUN or TURN', server([{ urls: 'javascript:alert(1)' }]), /not a stun: or turn: URL/],
    ['ICE url https', server([{ urls: ['https://evil.example/'] }]), /not a stun: or turn: URL/],
    ['ICE url with a space', server([{ urls: 'turn:a b' }]), /not a stun: or turn: URL/],
    ['ICE url a number', server([{ urls: [1] }]), /URL is not a string/],
    ['ICE username a number', server([{ urls: 'turn:x', username: 1, credential: 'c' }]), /username is not a string/],
    ['ICE credential too long', server([{ urls: 'turn:x', username: 'u', credential: 'c'.repeat(513) }]), /credential is over 512 bytes/],
    ['bye reason too long', JSON.stringify({ type: 'bye', reason: 'r'.repeat(257) }), /reason is over 256 bytes/],
    ['bye reason with a line break', JSON.stringify({ type: 'bye', reason: 'a\nb' }), /control character/],
    ['error without code', '{"type":"error","message":"m"}', /error has no code/],
    ['error code not a word', '{"type":"error","code":"<img src=x>"}', /not a word/],
    ['error message too long', JSON.stringify({ type: 'error', code: 'internal', message: 'm'.repeat(513) }), /error message is over 512 bytes/],
  ];
  for (const [name, data, re] of cases) {
    rejects(() => parseServerMessage(data), re, name);
  }
});

test('parseCandidateLine reads addresses, ports and types', () => {
  assert.deepEqual(parseCandidateLine(cand), { protocol: 'udp', address: '192.0.2.7', port: 50000, type: 'host' });
  assert.deepEqual(parseCandidateLine('candidate:2 1 UDP 1694498815 127.0.0.1 50380 typ srflx raddr 0.0.0.0 rport 50380 generation 0'),
    { protocol: 'udp', address: '127.0.0.1', port: 50380, type: 'srflx', relatedAddress: '0.0.0.0', relatedPort: 50380 });
  assert.equal(parseCandidateLine('candidate:3 1 udp 1 FD00::2 9 typ host').address, 'fd00::2');
  for (const bad of [
    undefined, 7, '', 'candidate:', 'candidate:1 1 udp 1 192.0.2.7 50000 host host',
    'candidate:1 1 udp 1 192.0.2.7 65536 typ host', 'candidate:1 1 udp 1 192.0.2.7 -1 typ host', 'candidate:1 1 udp 1 192.0.2.7 5e3 typ host',
  ]) {
    assert.equal(parseCandidateLine(bad), null, `parseCandidateLine(${JSON.stringify(bad)})`);
  }
});

test('RemoteCandidates keeps at most 64 candidates', () => {
  const r = new RemoteCandidates();
  for (let i = 1; i < limits.maxRemoteCandidates; i++) r.add(`candidate:1 1 udp 1 192.0.2.7 ${1000 + i} typ host`);
  r.add('not a candidate line'); // counted all the same, not kept
  assert.equal(r.list.length, limits.maxRemoteCandidates - 1);
  assert.throws(() => r.add(cand), /more than 64 candidates/);
  const r2 = new RemoteCandidates();
  for (let i = 0; i < limits.maxRemoteCandidates; i++) r2.add(cand);
  assert.throws(() => r2.add(cand), /more than 64 candidates/);
});

// FakeWebSocket is the part of WebSocket that Signalling uses; the test
// plays the server.
class FakeWebSocket {
  static last = null;

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closed = null;
    this.listeners = new Map();
    FakeWebSocket.last = this;
  }

  addEventListener(type, f) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(f);
  }

  emit(type, ev = {}) {
    for (const f of this.listeners.get(type) || []) f(ev);
  }

  open() {
    this.readyState = 1;
    this.emit('open');
  }

  receive(data) {
    this.emit('message', { data: typeof data === 'string' ? data : data });
  }

  send(data) {
    this.sent.push(JSON.parse(data));
  }

  close(code) {
    if (this.closed !== null) return;
    this.closed = code;
    this.readyState = 3;
    this.emit('close', { code });
  }
}

async function joined() {
  const s = new Signalling('wss://server.test/v1/signal', FakeWebSocket);
  const ends = [];
  s.onEnd = (e) => ends.push(e);
  const p = s.join('42');
  const ws = FakeWebSocket.last;
  ws.open();
  assert.deepEqual(ws.sent, [{ type: 'join', id: '42' }]);
  return { s, ws, p, ends };
}

test('Signalling joins, relays and tells how the pairing ended', async () => {
  const { s, ws, p, ends } = await joined();
  ws.receive(JSON.stringify({ type: 'paired', session: 'sess', ice: [{ urls: ['stun:127.0.0.1:3478'] }] }));
  assert.deepEqual(await p, { session: 'sess', ice: [{ urls: ['stun:127.0.0.1:3478'] }] });
  const relayed = [];
  s.onRelay = (d) => relayed.push(d);
  ws.receive(JSON.stringify({ type: 'relay', data: encodeSignal({ type: 'end-of-candidates' }) }));
  assert.deepEqual(relayed.map(parseSignal), [{ type: 'end-of-candidates' }]);
  s.relay({ type: 'end-of-candidates' });
  assert.equal(ws.sent[1].type, 'relay');
  assert.equal(ws.sent[1].session, 'sess');
  assert.deepEqual(parseSignal(ws.sent[1].data), { type: 'end-of-candidates' });
  // Errors once paired change nothing.
  ws.receive('{"type":"error","code":"not-paired","message":"m"}');
  assert.equal(ends.length, 0);
  ws.receive('{"type":"peer-left"}');
  assert.equal(ends.length, 1);
  assert.equal(ends[0].code, 'peer-left');
  // Once ended, nothing more is reported.
  ws.receive('{"type":"bye","reason":"x"}');
  assert.equal(ends.length, 1);
  s.close();
  assert.deepEqual(ws.sent.at(-1), { type: 'bye', session: 'sess', reason: 'the expert left' });
  assert.equal(ws.closed, 1000);
});

test('Signalling reports the novice ending the attempt with its reason', async () => {
  const { ws, p, ends } = await joined();
  ws.receive('{"type":"paired","session":"s","ice":null}');
  await p;
  ws.receive('{"type":"bye","reason":"auth-failed"}');
  assert.equal(ends[0].code, 'bye');
  assert.equal(ends[0].reason, 'auth-failed');
});

test('Signalling rejects the server refusing the join', async () => {
  const { ws, p } = await joined();
  ws.receive('{"type":"error","code":"offline","message":"the invitation\'s novice is not connected"}');
  await assert.rejects(p, (e) => e instanceof SignalError && e.code === 'offline' && /not connected/.test(e.message));
  assert.equal(ws.closed, 1000);
});

test('Signalling refuses malformed server messages, before and after pairing', async () => {
  for (const bad of ['not json', '{"type":"relay","data":"e30="}', new ArrayBuffer(1), '{"type":"paired","session":"s","ice":[{"urls":"http://x"}]}']) {
    const { ws, p, ends } = await joined();
    ws.receive(bad);
    await assert.rejects(p, (e) => e instanceof SignalError && e.code === 'malformed');
    assert.equal(ws.closed, 1000, `connection left open after ${bad}`);
    assert.equal(ends.length, 1);
    ws.receive('{"type":"paired","session":"s","ice":[]}'); // after the close: ignored
    assert.equal(ends.length, 1);
  }
  const { ws, p, ends } = await joined();
  ws.receive('{"type":"paired","session":"s","ice":[]}');
  await p;
  ws.receive('{"type":"relay","data":"x","extra":1}');
  assert.equal(ends.length, 1);
  assert.equal(ends[0].code, 'malformed');
  assert.match(ends[0].message, /unknown field extra/);
  assert.equal(ws.closed, 1000);
});

test('Signalling waits in line when the server queues the join', async () => {
  const { s, ws, p, ends } = await joined();
  let queued = 0;
  s.onQueued = () => queued++;
  ws.receive('{"type":"queued"}');
  assert.equal(queued, 1);
  assert.equal(ws.closed, null, 'closed the connection while in line');
  ws.receive('{"type":"paired","session":"s","ice":[]}');
  assert.deepEqual(await p, { session: 's', ice: [] });
  // In line again once paired makes no sense.
  ws.receive('{"type":"queued"}');
  assert.equal(ends.length, 1);
  assert.equal(ends[0].code, 'malformed');
  // A wait that ends with "busy" rejects the join.
  const j = await joined();
  j.ws.receive('{"type":"queued"}');
  j.ws.receive('{"type":"error","code":"busy","message":"try again later"}');
  await assert.rejects(j.p, (e) => e instanceof SignalError && e.code === 'busy');
});

test('Signalling reports a lost server', async () => {
  const { ws, p, ends } = await joined();
  ws.close(1006);
  await assert.rejects(p, (e) => e.code === 'closed');
  assert.equal(ends[0].code, 'closed');
});

test('Signalling tells a server that goes away before pairing (1001) from a lost connection', async () => {
  for (const [code, want] of [[1001, 'going-away'], [1006, 'closed'], [1000, 'closed']]) {
    const { ws, p } = await joined();
    ws.receive('{"type":"queued"}');
    ws.close(code);
    await assert.rejects(p, (e) => e instanceof SignalError && e.code === want, `close ${code}`);
  }
});
