// The rendezvous server's signalling, from the expert's side (see package
// server for the protocol, and transport/rtc/signal.go for the messages
// relayed inside it): join the novice's look-up id, then carry WebRTC's
// offer, answer and candidates, each as rtc's JSON in base64, in the
// server's "relay" messages.

// Bounds, as transport/rtc sets them: what the peer may make us parse.
const maxMessage = 64 << 10;
const maxSDP = 32 << 10;
const maxCandidate = 1 << 10;
const maxRemoteCandidates = 64;

// SignalError is a failure of the server or of the signalling: code is the
// server's error code ("unknown", "offline", ...), "bye" when the novice's
// side ended the attempt (reason says why), "closed" when the connection to
// the server was lost, or "malformed" for a message we refuse.
export class SignalError extends Error {
  constructor(code, message, reason = '') {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

function b64encode(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function b64decode(s) {
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

// noControl refuses control characters: a candidate goes into SDP-like
// parsers, where a line break would smuggle in an attribute.
function noControl(s) {
  return !/[\u0000-\u001f\u007f]/.test(s);
}

// parseSignal reads one relayed rtc message strictly, as rtc's parseSignal
// does: known type, only its fields, bounded sizes. It throws SignalError.
export function parseSignal(data) {
  if (typeof data !== 'string' || data.length > maxMessage * 2) {
    throw new SignalError('malformed', 'relayed data is not a base64 string');
  }
  let m;
  try {
    m = JSON.parse(b64decode(data));
  } catch {
    throw new SignalError('malformed', 'relayed data is not base64 JSON');
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) {
    throw new SignalError('malformed', 'relayed message is not an object');
  }
  const allowed = {
    offer: ['type', 'sdp'],
    answer: ['type', 'sdp'],
    candidate: ['type', 'candidate', 'sdpMid', 'sdpMLineIndex'],
    'end-of-candidates': ['type'],
  }[m.type];
  if (!allowed) throw new SignalError('malformed', `unknown message type ${String(m.type).slice(0, 32)}`);
  for (const k of Object.keys(m)) {
    if (!allowed.includes(k)) throw new SignalError('malformed', `${m.type} carries field ${k.slice(0, 32)}`);
  }
  if (m.type === 'offer' || m.type === 'answer') {
    if (typeof m.sdp !== 'string' || !m.sdp.startsWith('v=0') || m.sdp.length > maxSDP) {
      throw new SignalError('malformed', `bad ${m.type} sdp`);
    }
  }
  if (m.type === 'candidate') {
    if (typeof m.candidate !== 'string' || m.candidate === '' || m.candidate.length > maxCandidate || !noControl(m.candidate)) {
      throw new SignalError('malformed', 'bad candidate');
    }
    if ('sdpMid' in m && (typeof m.sdpMid !== 'string' || m.sdpMid.length > 32 || !noControl(m.sdpMid))) {
      throw new SignalError('malformed', 'bad sdpMid');
    }
    if ('sdpMLineIndex' in m && !(Number.isInteger(m.sdpMLineIndex) && m.sdpMLineIndex >= 0 && m.sdpMLineIndex < 65536)) {
      throw new SignalError('malformed', 'bad sdpMLineIndex');
    }
  }
  return m;
}

// encodeCandidate turns a browser's RTCIceCandidate into rtc's message:
// only the fields rtc accepts (a browser adds usernameFragment).
export function encodeCandidate(c) {
  const m = { type: 'candidate', candidate: c.candidate };
  if (c.sdpMid != null) m.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex != null) m.sdpMLineIndex = c.sdpMLineIndex;
  return m;
}

// Signalling is one WebSocket to the server's /v1/signal, from join to the
// end of the session.
export class Signalling {
  constructor(url) {
    this._url = url;
    this._ws = null;
    this._session = '';
    this.onRelay = () => {};
    // onEnd(SignalError) is called once when the server or the peer ends
    // the pairing, or the connection is lost.
    this.onEnd = () => {};
    this._ended = false;
  }

  // join connects and joins id; it resolves with the server's "paired"
  // message ({session, ice}) and rejects with a SignalError.
  join(id) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this._url);
      } catch (e) {
        reject(new SignalError('closed', `cannot reach the server: ${e.message}`));
        return;
      }
      this._ws = ws;
      let paired = false;
      ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'join', id })));
      ws.addEventListener('message', (ev) => {
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (!m || typeof m.type !== 'string') return;
        if (!paired) {
          if (m.type === 'paired' && typeof m.session === 'string') {
            paired = true;
            this._session = m.session;
            resolve({ session: m.session, ice: Array.isArray(m.ice) ? m.ice : [] });
          } else if (m.type === 'error') {
            reject(new SignalError(String(m.code || 'error'), String(m.message || '')));
            this.close();
          }
          return;
        }
        switch (m.type) {
          case 'relay':
            this.onRelay(m.data);
            break;
          case 'bye':
            this._end(new SignalError('bye', 'the other computer ended the attempt', String(m.reason || '')));
            break;
          case 'peer-left':
            this._end(new SignalError('bye', 'the other computer left the server'));
            break;
          // Errors once paired ("not-paired" after the peer left) change
          // nothing the page can act on.
        }
      });
      ws.addEventListener('close', () => {
        if (!paired) {
          reject(new SignalError('closed', 'could not reach the rendezvous server'));
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
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return;
    this._ws.send(JSON.stringify({ type: 'relay', session: this._session, data: b64encode(JSON.stringify(msg)) }));
  }

  // close ends the pairing (the novice's agent then waits for the next
  // expert) and the connection.
  close(reason) {
    this._ended = true;
    const ws = this._ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN && this._session) {
      ws.send(JSON.stringify({ type: 'bye', session: this._session, reason: reason || 'the expert left' }));
    }
    ws.close(1000);
  }
}

// RemoteCandidates counts the peer's candidates and remembers its host
// addresses, which tell a direct path from a punched one.
export class RemoteCandidates {
  constructor() {
    this.count = 0;
    this.hosts = new Set();
  }

  add(line) {
    this.count++;
    if (this.count > maxRemoteCandidates) {
      throw new SignalError('malformed', `more than ${maxRemoteCandidates} candidates`);
    }
    const f = line.replace(/^candidate:/, '').split(/\s+/);
    if (f.length >= 8 && f[6] === 'typ' && f[7] === 'host') this.hosts.add(`${f[4]} ${f[5]}`);
  }
}
