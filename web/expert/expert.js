// The expert's web app: join a novice by short code through this server,
// set up WebRTC, authenticate and run the session in assist.wasm, show the
// desktop with noVNC.
//
// window.assistExpertPage reports what the page is doing, for tests:
//   phase:  "loading" | "ready" | "connecting" | "session" | "ended" | "failed"
//   state:  the session state ("asking", "viewing", "control-asked",
//           "controlling", "ended"), once in a session
//   rfb:    "none" | "connecting" | "connected" | "disconnected"
//   path:   "direct", "punched", "relay-udp", "relay-tcp", "relay-tls" or ""
//   error:  {kind, message} of the last failure, or null
//   chatLines, viewOnly
import RFB from './novnc/core/rfb.js';
import { Signalling, SignalError, RemoteCandidates, parseSignal, encodeCandidate } from './signal.js';
import { connectionPath } from './path.js';
import { DisplayChannel } from './channel.js';

// connectTimeout bounds everything from join to an authenticated session.
const connectTimeout = 45000;

const el = (id) => document.querySelector(`[data-testid="${id}"]`);

const labels = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  asking: 'Waiting for permission to view…',
  viewing: 'Viewing',
  'control-asked': 'Asking for control…',
  controlling: 'You have control',
  ended: 'Session ended',
  failed: 'Not connected',
};

const status = {
  phase: 'loading',
  state: '',
  rfb: 'none',
  path: '',
  error: null,
  chatLines: 0,
  get viewOnly() { return rfb ? rfb.viewOnly : true; },
};
window.assistExpertPage = status;

let attempt = null; // the current connection: {sig, pc, session, ...}
let rfb = null;
let askPending = false;

// ---- Advice for every way joining can fail.

const serverErrors = {
  unknown: ['No invitation has this code.', 'Check the number at the start of the code with the person who gave it to you.'],
  expired: ['This invitation has expired.', 'Ask the other person for a new code.'],
  offline: ['The other computer is not connected to the server right now.', 'Ask the other person to check that Assist is still waiting for you, then try again.'],
  busy: ['Another expert is connected to this invitation.', 'Try again when they have left.'],
  'rate-limited': ['The server is receiving too many requests from you.', 'Wait a minute, then try again.'],
};

const handshakeErrors = {
  'bad-code': ['That is not a code.', ''],
  'wrong-password': ['Wrong code.', 'Check the two words with the person who gave you the code, then try again. After a few wrong tries the code stops working.'],
  'unknown-invitation': ['The other computer is not serving this code any more.', 'Ask for a new code.'],
  version: ['The other computer runs an incompatible version of Assist.', 'Ask the other person to update Assist.'],
  'not-assist': ['The other end does not speak Assist.', 'Check the code and the server address.'],
  unreachable: ['Could not connect to the other computer.', 'Check that it is still waiting, then try again. A firewall may block the connection.'],
};

function describe(err) {
  if (err instanceof SignalError) {
    if (err.code === 'bye') {
      if (err.reason === 'auth-failed') return { kind: 'wrong-password', text: handshakeErrors['wrong-password'] };
      const why = err.reason ? ` (${err.reason})` : '';
      return { kind: 'bye', text: [`The other computer ended the attempt${why}.`, 'Try again, or ask for a new code.'] };
    }
    if (err.code === 'closed') return { kind: 'server', text: [`${err.message[0].toUpperCase()}${err.message.slice(1)}.`, 'Check your network connection, then reload this page.'] };
    if (err.code === 'malformed') return { kind: 'signalling', text: [`Bad signalling from the server: ${err.message}.`, 'Try again; if it keeps happening, the server is broken.'] };
    const t = serverErrors[err.code] || [`The server refused: ${err.message || err.code}.`, 'Try again later.'];
    return { kind: err.code, text: t };
  }
  const t = handshakeErrors[err.kind];
  if (t) return { kind: err.kind, text: err.kind === 'bad-code' ? [err.message.replace(/^invitation: not a short code: /, ''), ''] : t };
  return { kind: 'failed', text: [`Could not connect: ${err.message || err}.`, 'Try again.'] };
}

function showError(kind, message, hint) {
  status.error = { kind, message };
  const banner = el('error');
  banner.dataset.kind = kind;
  el('error-message').textContent = message;
  el('error-hint').textContent = hint;
  banner.hidden = false;
}

function hideError() {
  el('error').hidden = true;
}

// ---- The controls.

function update() {
  const s = status.phase === 'session' ? status.state : status.phase === 'ended' ? 'ended' : status.phase === 'connecting' ? 'connecting' : 'idle';
  const badge = el('state');
  badge.textContent = labels[s] || s;
  badge.dataset.state = s;
  document.title = `${labels[s] || s} — Assist`;
  const live = status.phase === 'session' && status.state !== 'ended';
  el('request-control').disabled = !live || status.state !== 'viewing' || askPending;
  el('leave').disabled = !(live || status.phase === 'connecting');
  el('chat-input').disabled = !live;
  el('chat-send').disabled = !live;
  el('join').hidden = status.phase === 'session';
  el('session').hidden = status.phase !== 'session';
  const joinable = status.phase === 'ready' || status.phase === 'ended' || status.phase === 'failed';
  el('code').disabled = !joinable;
  el('connect').disabled = !joinable;
  el('path').hidden = !status.path;
  el('path').textContent = status.path ? `Path: ${status.path}` : '';
  if (rfb) {
    // The novice's consent gate drops input anyway unless control was
    // granted; this only avoids sending it.
    rfb.viewOnly = status.state !== 'controlling';
  }
}

function progress(text) {
  el('progress').textContent = text;
}

// ---- Chat.

function appendLog(li) {
  const log = el('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
  status.chatLines = log.children.length;
}

function addChat(from, text) {
  const li = document.createElement('li');
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = `${from}:`;
  const body = document.createElement('span');
  body.textContent = text;
  li.append(time, who, body);
  appendLog(li);
}

function addNote(text) {
  const li = document.createElement('li');
  li.className = 'note';
  li.textContent = text;
  appendLog(li);
}

// ---- The desktop.

async function openDisplay(a) {
  if (rfb || status.rfb === 'connecting') return;
  status.rfb = 'connecting';
  let stream;
  try {
    stream = await a.session.openDisplay();
  } catch (e) {
    status.rfb = 'disconnected';
    addNote(`The desktop could not be shown: ${e.message}`);
    return;
  }
  if (attempt !== a || status.phase !== 'session') {
    stream.close();
    status.rfb = 'none';
    return;
  }
  const r = new RFB(el('screen'), new DisplayChannel(stream), { shared: true });
  r.scaleViewport = true;
  r.resizeSession = false;
  r.viewOnly = true;
  r.background = '#20242a';
  r.addEventListener('connect', () => {
    status.rfb = 'connected';
    update();
  });
  r.addEventListener('disconnect', () => {
    status.rfb = 'disconnected';
    if (rfb === r) rfb = null;
    // The picture went away while the session goes on: try once more.
    if (attempt === a && status.phase === 'session' && (status.state === 'viewing' || status.state === 'controlling' || status.state === 'control-asked')) {
      addNote('The picture of the desktop was lost; reconnecting it.');
      setTimeout(() => openDisplay(a), 1000);
    }
  });
  rfb = r;
  update();
}

function closeDisplay() {
  if (rfb) {
    const r = rfb;
    rfb = null;
    r.disconnect();
  }
  status.rfb = status.rfb === 'none' ? 'none' : 'disconnected';
}

// ---- Session events from assist.wasm.

function onSessionEvent(a, ev) {
  if (attempt !== a) return;
  switch (ev.type) {
    case 'state':
      status.state = ev.state;
      askPending = false;
      if (ev.reason) addNote(ev.reason);
      if (ev.state === 'viewing' || ev.state === 'control-asked' || ev.state === 'controlling') openDisplay(a);
      if (ev.state === 'controlling' && rfb) rfb.focus();
      break;
    case 'chat':
      addChat('Them', ev.text);
      break;
    case 'ended':
      status.state = 'ended';
      finish(a, `Session ended${ev.reason ? ': ' + ev.reason : ''}.`);
      break;
  }
  update();
}

// finish ends an attempt or a session for good and tells why.
function finish(a, note) {
  if (attempt !== a) return;
  attempt = null;
  clearTimeout(a.timer);
  clearInterval(a.pathTimer);
  closeDisplay();
  a.sig.close();
  if (a.pc) a.pc.close();
  if (status.phase === 'session') {
    status.phase = 'ended';
    progress(note || 'Session ended.');
    addNote(note || 'Session ended.');
  }
  update();
}

// fail ends a connection attempt with advice.
function fail(a, err) {
  if (attempt !== a) return;
  const d = describe(err);
  showError(d.kind, d.text[0], d.text[1]);
  const wasSession = status.phase === 'session';
  finish(a);
  if (!wasSession) {
    status.phase = 'failed';
    progress('');
  }
  update();
}

// ---- Connecting.

function signalURL() {
  const u = new URL('/v1/signal', location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

async function connect(code, name) {
  hideError();
  status.error = null;
  const parsed = window.assistExpert.parseCode(code);
  if (parsed.error) {
    const d = describe(parsed.error);
    showError(d.kind, d.text[0], d.text[1]);
    status.phase = 'failed';
    update();
    return;
  }
  const a = { sig: new Signalling(signalURL()), pc: null, session: null, timer: 0, pathTimer: 0, remote: new RemoteCandidates() };
  attempt = a;
  status.phase = 'connecting';
  status.state = '';
  status.path = '';
  status.rfb = 'none';
  el('chat-log').replaceChildren();
  status.chatLines = 0;
  update();
  a.timer = setTimeout(() => fail(a, { kind: 'unreachable', message: 'timed out' }), connectTimeout);
  a.sig.onEnd = (err) => {
    // Once authenticated the session has its own channel: the server
    // going away does not end it.
    if (!a.session) fail(a, err);
  };
  try {
    progress('Looking for the other computer…');
    const paired = await a.sig.join(parsed.lookup);
    if (attempt !== a) return;
    progress('Connecting…');
    await setUpPeer(a, paired, code, name);
  } catch (e) {
    fail(a, e);
  }
}

async function setUpPeer(a, paired, code, name) {
  const pc = new RTCPeerConnection({ iceServers: paired.ice });
  a.pc = pc;
  // Negotiated out of band, as transport/rtc does: id 0, label "assist",
  // reliable and ordered.
  const dc = pc.createDataChannel('assist', { negotiated: true, id: 0 });
  dc.binaryType = 'arraybuffer';
  let haveAnswer = false;
  const pending = [];
  pc.addEventListener('icecandidate', (ev) => {
    if (!ev.candidate) {
      a.sig.relay({ type: 'end-of-candidates' });
    } else if (ev.candidate.candidate) {
      a.sig.relay(encodeCandidate(ev.candidate));
    }
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'failed') {
      fail(a, { kind: 'unreachable', message: 'ICE or DTLS failed' });
    }
  });
  a.sig.onRelay = async (data) => {
    try {
      const m = parseSignal(data);
      switch (m.type) {
        case 'answer':
          if (haveAnswer) throw new SignalError('malformed', 'a second answer');
          haveAnswer = true;
          await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
          for (const c of pending.splice(0)) await pc.addIceCandidate(c);
          break;
        case 'candidate': {
          a.remote.add(m.candidate);
          const c = { candidate: m.candidate, sdpMid: m.sdpMid ?? null, sdpMLineIndex: m.sdpMLineIndex ?? null };
          if (haveAnswer) await pc.addIceCandidate(c);
          else pending.push(c);
          break;
        }
        case 'end-of-candidates':
          break;
        default:
          throw new SignalError('malformed', `unexpected ${m.type}`);
      }
    } catch (e) {
      fail(a, e instanceof SignalError ? e : new SignalError('malformed', e.message));
    }
  };
  const opened = new Promise((resolve) => {
    if (dc.readyState === 'open') resolve();
    else dc.addEventListener('open', resolve, { once: true });
  });
  const offer = await pc.createOffer();
  // The offer leaves before any candidate, as rtc's Dial sends it.
  a.sig.relay({ type: 'offer', sdp: offer.sdp });
  await pc.setLocalDescription(offer);
  await opened;
  if (attempt !== a) return;
  progress('Checking the code…');
  const session = await window.assistExpert.connect({
    code,
    name,
    channel: dc,
    localDescription: pc.localDescription.sdp,
    remoteDescription: pc.remoteDescription.sdp,
    onEvent: (ev) => onSessionEvent(a, ev),
  });
  if (attempt !== a) {
    session.leave();
    return;
  }
  a.session = session;
  clearTimeout(a.timer);
  status.phase = 'session';
  status.state = status.state || 'asking';
  progress('');
  addNote('Connected. The other person decides what you may see and do.');
  update();
  const refreshPath = async () => {
    try {
      status.path = await connectionPath(pc, a.remote.hosts);
      update();
    } catch {
      // Statistics are best effort.
    }
  };
  refreshPath();
  a.pathTimer = setInterval(refreshPath, 5000);
}

// ---- Wiring.

el('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = el('name').value.trim();
  try {
    localStorage.setItem('assist.name', name);
  } catch {
    // Storage may be off; the name is a convenience.
  }
  connect(el('code').value, name);
});

el('request-control').addEventListener('click', () => {
  if (!attempt || !attempt.session) return;
  askPending = true;
  update();
  attempt.session.requestControl().catch((e) => {
    askPending = false;
    addNote(`Could not ask for control: ${e.message}`);
    update();
  });
});

el('leave').addEventListener('click', () => {
  const a = attempt;
  if (!a) return;
  if (a.session) {
    a.session.leave().finally(() => finish(a, 'You left the session.'));
  } else {
    finish(a);
    status.phase = 'ready';
    progress('');
    update();
  }
});

el('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = el('chat-input');
  const text = input.value.trim();
  if (text === '' || !attempt || !attempt.session) return;
  input.value = '';
  addChat('You', text);
  attempt.session.sendChat(text).catch((err) => addNote(`Not sent: ${err.message}`));
  input.focus();
});

window.addEventListener('pagehide', () => {
  if (attempt && attempt.session) attempt.session.leave();
});

async function load() {
  try {
    el('name').value = localStorage.getItem('assist.name') || '';
  } catch {
    // No storage: no remembered name.
  }
  // An invitation URL carries the code in its fragment, which browsers
  // never send to the server. Take it, then drop it from the address bar.
  let fromURL = location.hash.slice(1);
  try {
    fromURL = decodeURIComponent(fromURL);
  } catch {
    // Left as it is: parseCode says what is wrong with it.
  }
  if (fromURL) {
    el('code').value = fromURL;
    history.replaceState(null, '', location.pathname + location.search);
  }
  try {
    const go = new Go();
    const { instance } = await WebAssembly.instantiateStreaming(fetch('./assist.wasm'), go.importObject);
    go.run(instance).then(() => {
      status.phase = 'failed';
      showError('crashed', 'Assist stopped working in this page.', 'Reload the page.');
      update();
    });
  } catch (e) {
    status.phase = 'failed';
    showError('load', `Assist could not load: ${e.message}.`, 'Reload the page; if that fails, the server was built without its web app (scripts/setup.sh builds it).');
    progress('');
    update();
    return;
  }
  status.phase = 'ready';
  progress('');
  update();
  if (fromURL) connect(fromURL, el('name').value.trim());
  else el('code').focus();
}

update();
load();
