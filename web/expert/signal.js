// The rendezvous server's signalling, from the expert's side (see package
// server for the protocol, and transport/rtc/signal.go for the messages
// relayed inside it): join the novice's look-up id, then carry WebRTC's
// offer, answer and candidates, each as rtc's JSON in base64, in the
// server's "relay" messages.
//
// Everything here comes from the network and is untrusted: the server and
// the peer may send anything. Parsers are strict (known types, only their
// fields, of the right JSON types, bounded sizes) and throw SignalError with
// a message that says what was wrong. No DOM: node's test runner imports
// this module as it is (signal.test.mjs).

// Bounds, as transport/rtc and package server set them. Sizes are in bytes
// of UTF-8, as the Go ends count them.
export const limits = Object.freeze({
  // maxServerMessage bounds one message from the server: a relayed rtc
  // message (64 KiB) in base64, wrapped.
  maxServerMessage: 96 << 10,
  maxMessage: 64 << 10,
  maxSDP: 32 << 10,
  maxCandidate: 1 << 10,
  maxSDPMid: 32,
  maxRemoteCandidates: 64,
  maxSession: 64,
  maxReason: 256,
  maxErrorCode: 32,
  maxErrorMessage: 512,
  maxICEServers: 8,
  maxICEURLs: 8,
  maxICEField: 512,
});

// SignalError is a failure of the server or of the signalling: code is the
// server's error code ("unknown", "offline", ...), "bye" when the novice's
// side ended the attempt (reason says why), "peer-left" when the novice's
// agent lost its connection to the server, "closed" when our connection to
// the server was lost, or "malformed" for a message we refuse.
export class SignalError extends Error {
  constructor(code, message, reason = '') {
    super(message);
    this.name = 'SignalError';
    this.code = code;
    this.reason = reason;
  }
}

function malformed(message) {
  return new SignalError('malformed', message);
}

const encoder = new TextEncoder();

function byteLength(s) {
  return encoder.encode(s).length;
}

// clip shortens text from the network for an error message.
function clip(s, n = 32) {
  const t = String(s);
  return t.length <= n ? t : `${t.slice(0, n)}...`;
}

function b64encode(text) {
  const bytes = encoder.encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

// b64decode decodes standard base64 (as Go's encoding/json writes []byte)
// into UTF-8 text; it throws on anything else.
function b64decode(s) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Error('not base64');
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

// noControl refuses control characters: a candidate goes into SDP-like
// parsers, where a line break would smuggle in an attribute.
function noControl(s) {
  return !/[\u0000-\u001f\u007f]/.test(s);
}

// isObject: a JSON object (not null, not an array).
function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// checkFields refuses members a message of its type does not have, and
// missing required ones. fields maps each member to whether it is
// required. (JSON.parse keeps "__proto__" as an own member, so it is
// refused like any unknown one.)
function checkFields(m, what, fields) {
  for (const k of Object.keys(m)) {
    if (!Object.hasOwn(fields, k)) throw malformed(`${what} carries an unknown field ${clip(k)}`);
  }
  for (const [k, required] of Object.entries(fields)) {
    if (required && !Object.hasOwn(m, k)) throw malformed(`${what} has no ${k}`);
  }
}

// parseJSONObject parses text that must hold one JSON object.
function parseJSONObject(text, what) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    throw malformed(`${what} is not JSON`);
  }
  if (!isObject(m)) throw malformed(`${what} is not a JSON object`);
  return m;
}

// The fields of each relayed rtc message (true: required).
const signalFields = new Map([
  ['offer', { type: true, sdp: true }],
  ['answer', { type: true, sdp: true }],
  ['candidate', { type: true, candidate: true, sdpMid: false, sdpMLineIndex: false }],
  ['end-of-candidates', { type: true }],
]);

// parseSignal reads one relayed rtc message strictly, as rtc's parseSignal
// does: standard base64 of one JSON object, known type, only its fields,
// bounded sizes. It throws SignalError("malformed").
export function parseSignal(data) {
  if (typeof data !== 'string') throw malformed('relayed data is not a base64 string');
  if (data.length > Math.ceil(limits.maxMessage / 3) * 4) {
    throw malformed(`relayed message is over ${limits.maxMessage} bytes`);
  }
  let text;
  try {
    text = b64decode(data);
  } catch {
    throw malformed('relayed data is not base64 of UTF-8 text');
  }
  const m = parseJSONObject(text, 'relayed message');
  if (typeof m.type !== 'string') throw malformed('relayed message has no type');
  const fields = signalFields.get(m.type);
  if (!fields) throw malformed(`unknown relayed message type ${clip(m.type)}`);
  checkFields(m, m.type, fields);
  if (m.type === 'offer' || m.type === 'answer') {
    if (typeof m.sdp !== 'string' || !m.sdp.startsWith('v=0')) throw malformed(`${m.type}: sdp does not start with v=0`);
    if (byteLength(m.sdp) > limits.maxSDP) throw malformed(`${m.type}: sdp is over ${limits.maxSDP} bytes`);
  }
  if (m.type === 'candidate') {
    if (typeof m.candidate !== 'string' || m.candidate === '') throw malformed('empty candidate');
    if (byteLength(m.candidate) > limits.maxCandidate) throw malformed(`candidate is over ${limits.maxCandidate} bytes`);
    if (!noControl(m.candidate)) throw malformed('candidate holds a control character');
    if (Object.hasOwn(m, 'sdpMid')) {
      if (typeof m.sdpMid !== 'string') throw malformed('sdpMid is not a string');
      if (byteLength(m.sdpMid) > limits.maxSDPMid) throw malformed(`sdpMid is over ${limits.maxSDPMid} bytes`);
      if (!noControl(m.sdpMid)) throw malformed('sdpMid holds a control character');
    }
    if (Object.hasOwn(m, 'sdpMLineIndex') && !(Number.isInteger(m.sdpMLineIndex) && m.sdpMLineIndex >= 0 && m.sdpMLineIndex < 65536)) {
      throw malformed('sdpMLineIndex is not an integer from 0 to 65535');
    }
  }
  return m;
}

// encodeSignal turns an rtc message into the "data" of a relay message.
export function encodeSignal(msg) {
  return b64encode(JSON.stringify(msg));
}

// encodeCandidate turns a browser's RTCIceCandidate into rtc's message:
// only the fields rtc accepts (a browser adds usernameFragment).
export function encodeCandidate(c) {
  const m = { type: 'candidate', candidate: c.candidate };
  if (c.sdpMid != null) m.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex != null) m.sdpMLineIndex = c.sdpMLineIndex;
  return m;
}

// The fields of each server-to-expert message (true: required). The server
// sends "registered" to novices only.
const serverFields = new Map([
  ['paired', { type: true, session: true, ice: true }],
  // The novice is paired with another expert: we wait in line, and
  // "paired" follows when it is our turn (or "error" "busy").
  ['queued', { type: true }],
  ['relay', { type: true, data: true }],
  ['bye', { type: true, reason: false }],
  ['peer-left', { type: true }],
  ['error', { type: true, code: true, message: false }],
]);

function boundedString(v, max, what) {
  if (typeof v !== 'string') throw malformed(`${what} is not a string`);
  if (byteLength(v) > max) throw malformed(`${what} is over ${max} bytes`);
  if (!noControl(v)) throw malformed(`${what} holds a control character`);
  return v;
}

// parseICEServers checks the server's list of STUN and TURN servers before
// it reaches RTCPeerConnection (which throws on a bad one, with a message
// about its own API). null, as Go encodes an empty list, is no servers.
export function parseICEServers(ice) {
  if (ice === null) return [];
  if (!Array.isArray(ice)) throw malformed('the ICE server list is not an array');
  if (ice.length > limits.maxICEServers) throw malformed(`more than ${limits.maxICEServers} ICE servers`);
  return ice.map((s, i) => {
    const what = `ICE server ${i}`;
    if (!isObject(s)) throw malformed(`${what} is not an object`);
    checkFields(s, what, { urls: true, username: false, credential: false });
    const urls = typeof s.urls === 'string' ? [s.urls] : s.urls;
    if (!Array.isArray(urls) || urls.length === 0 || urls.length > limits.maxICEURLs) {
      throw malformed(`${what} has no list of 1 to ${limits.maxICEURLs} URLs`);
    }
    for (const u of urls) {
      boundedString(u, limits.maxICEField, `${what}'s URL`);
      if (!/^(stun|stuns|turn|turns):[^\s]+$/.test(u)) throw malformed(`${what}'s URL ${clip(u)} is not a stun: or turn: URL`);
    }
    const out = { urls: [...urls] };
    if (Object.hasOwn(s, 'username')) out.username = boundedString(s.username, limits.maxICEField, `${what}'s username`);
    if (Object.hasOwn(s, 'credential')) out.credential = boundedString(s.credential, limits.maxICEField, `${what}'s credential`);
    return out;
  });
}

// parseServerMessage reads one WebSocket message from the server strictly
// and returns it with its fields checked: {type: "paired", session, ice},
// {type: "queued"}, {type: "relay", data}, {type: "bye", reason},
// {type: "peer-left"} or {type: "error", code, message}. It throws
// SignalError("malformed").
export function parseServerMessage(data) {
  if (typeof data !== 'string') throw malformed('the server sent a binary message');
  if (data.length > limits.maxServerMessage || byteLength(data) > limits.maxServerMessage) {
    throw malformed(`the server sent a message over ${limits.maxServerMessage} bytes`);
  }
  const m = parseJSONObject(data, 'server message');
  if (typeof m.type !== 'string') throw malformed('server message has no type');
  const fields = serverFields.get(m.type);
  if (!fields) throw malformed(`unknown server message type ${clip(m.type)}`);
  checkFields(m, m.type, fields);
  switch (m.type) {
    case 'paired': {
      const session = boundedString(m.session, limits.maxSession, 'session');
      if (session === '') throw malformed('empty session');
      return { type: 'paired', session, ice: parseICEServers(m.ice) };
    }
    case 'relay':
      // The rtc message inside is parsed by parseSignal.
      return { type: 'relay', data: m.data };
    case 'bye':
      return { type: 'bye', reason: Object.hasOwn(m, 'reason') ? boundedString(m.reason, limits.maxReason, 'reason') : '' };
    case 'peer-left':
      return { type: 'peer-left' };
    case 'queued':
      return { type: 'queued' };
    default: {
      const code = boundedString(m.code, limits.maxErrorCode, 'error code');
      if (!/^[a-z-]+$/.test(code)) throw malformed(`error code ${clip(code)} is not a word`);
      const message = Object.hasOwn(m, 'message') ? boundedString(m.message, limits.maxErrorMessage, 'error message') : '';
      return { type: 'error', code, message };
    }
  }
}

// Signalling is one WebSocket to the server's /v1/signal, from join to the
// end of the session. WebSocketImpl is the WebSocket constructor, for
// tests.
export class Signalling {
  constructor(url, WebSocketImpl = globalThis.WebSocket) {
    this._url = url;
    this._WebSocket = WebSocketImpl;
    this._ws = null;
    this._session = '';
    this.onRelay = () => {};
    // onQueued() is called when the server says we wait in line behind
    // another expert; join goes on waiting for "paired".
    this.onQueued = () => {};
    // onEnd(SignalError) is called once when the server or the peer ends
    // the pairing, the connection is lost, or the server sends a message
    // we refuse.
    this.onEnd = () => {};
    this._ended = false;
  }

  // join connects and joins id; it resolves with the server's "paired"
  // message ({session, ice}) and rejects with a SignalError.
  join(id) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this._WebSocket(this._url);
      } catch (e) {
        reject(new SignalError('closed', `cannot reach the server: ${e.message}`));
        return;
      }
      this._ws = ws;
      let paired = false;
      // refuse rejects a join still waiting, or ends a pairing, and
      // closes the connection.
      const refuse = (err) => {
        if (!paired) reject(err);
        this._end(err);
        this.close();
      };
      ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'join', id })));
      ws.addEventListener('message', (ev) => {
        if (this._ended) return;
        let m;
        try {
          m = parseServerMessage(ev.data);
        } catch (e) {
          refuse(e);
          return;
        }
        if (!paired) {
          if (m.type === 'queued') {
            this.onQueued();
          } else if (m.type === 'paired') {
            paired = true;
            this._session = m.session;
            resolve({ session: m.session, ice: m.ice });
          } else if (m.type === 'error') {
            refuse(new SignalError(m.code, m.message));
          } else {
            refuse(malformed(`the server sent ${m.type} before pairing`));
          }
          return;
        }
        switch (m.type) {
          case 'relay':
            this.onRelay(m.data);
            break;
          case 'bye':
            this._end(new SignalError('bye', 'the other computer ended the attempt', m.reason));
            break;
          case 'peer-left':
            this._end(new SignalError('peer-left', 'the other computer lost its connection to the server'));
            break;
          case 'paired':
            refuse(malformed('the server paired us twice'));
            break;
          case 'queued':
            refuse(malformed('the server put us in line after pairing us'));
            break;
          // Errors once paired ("not-paired" after the peer left) change
          // nothing the page can act on.
        }
      });
      ws.addEventListener('close', (ev) => {
        // 1001 (going away): the server is shutting down and tells us to
        // connect again; behind a load balancer, to another server.
        if (!paired) {
          reject(ev && ev.code === 1001
            ? new SignalError('going-away', 'the rendezvous server is shutting down')
            : new SignalError('closed', 'could not reach the rendezvous server'));
        }
        this._end(new SignalError('closed', 'lost the connection to the rendezvous server'));
      });
    });
  }

  _end(err) {
    if (this._ended) return;
    this._ended = true;
    this.onEnd(err);
  }

  // relay sends one rtc message to the novice.
  relay(msg) {
    if (!this._ws || this._ws.readyState !== 1 /* OPEN */) return;
    this._ws.send(JSON.stringify({ type: 'relay', session: this._session, data: encodeSignal(msg) }));
  }

  // close ends the pairing (the novice's agent then waits for the next
  // expert) and the connection.
  close(reason) {
    this._ended = true;
    const ws = this._ws;
    if (!ws) return;
    if (ws.readyState === 1 /* OPEN */ && this._session) {
      ws.send(JSON.stringify({ type: 'bye', session: this._session, reason: reason || 'the expert left' }));
    }
    ws.close(1000);
  }
}

// parseCandidateLine reads an ICE candidate line (RFC 8839: "candidate:"
// foundation component transport priority address port "typ" type, then
// "raddr" and "rport" for a reflexive or relayed one). It returns null for
// a line it cannot read: the browser judges those.
export function parseCandidateLine(line) {
  if (typeof line !== 'string') return null;
  const f = line.replace(/^candidate:/, '').trim().split(/\s+/);
  if (f.length < 8 || f[6] !== 'typ') return null;
  const port = Number(f[5]);
  if (!/^[0-9]{1,5}$/.test(f[5]) || port > 65535) return null;
  const c = { protocol: f[2].toLowerCase(), address: normalizeAddress(f[4]), port, type: f[7] };
  for (let i = 8; i + 1 < f.length; i += 2) {
    if (f[i] === 'raddr') c.relatedAddress = normalizeAddress(f[i + 1]);
    if (f[i] === 'rport' && /^[0-9]{1,5}$/.test(f[i + 1])) c.relatedPort = Number(f[i + 1]);
  }
  return c;
}

// normalizeAddress makes addresses from candidate lines and from the
// browser's statistics comparable: lower case, no IPv6 brackets.
export function normalizeAddress(a) {
  return typeof a === 'string' ? a.toLowerCase().replace(/^\[(.*)\]$/, '$1') : '';
}

// RemoteCandidates keeps the peer's signalled candidates, at most
// maxRemoteCandidates (as rtc bounds them): they tell a direct path from
// a punched one (see path.js).
export class RemoteCandidates {
  constructor() {
    this.count = 0;
    this.list = [];
  }

  // add records a candidate line; it throws SignalError past the bound.
  add(line) {
    this.count++;
    if (this.count > limits.maxRemoteCandidates) {
      throw malformed(`more than ${limits.maxRemoteCandidates} candidates`);
    }
    const c = parseCandidateLine(line);
    if (c) this.list.push(c);
  }
}
