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
//   pathPair: the selected pair's candidate types, as the browser has them
//           and as path.js reduced them ("srflx>host/host"), for a test
//           that wants to know why
//   error:  {kind, message} of the last failure, or null; kind "lost" when
//           the connection to the other computer was lost in a session
//   endReason: why the last session ended, as the novice's side said
//   interrupted: the network path is down in a session (ICE disconnected)
//   canReconnect: the Reconnect button is offered
//   reconnectIn: seconds until Reconnect may be clicked after the novice
//           said no (the button shows them), 0 if it may now
//   chatLines, viewOnly
//   stateText: the session view's state line; scale: "fit" or "1:1";
//   fullscreen: whether the page is full screen
//   clipboard: whether the novice shares the clipboard
//   clipboardText: the last text received from the novice's clipboard
//   scaled: scaled pictures drawn (session/scaled.js); scaledFailed: not decoded
import { SessionView } from './session/view.js';
import { openScreen } from './session/screen.js';
import { reasonText } from './session/words.js';
import { FilesPanel } from './session/files.js';
import { Signalling, SignalError, RemoteCandidates, parseSignal, encodeCandidate } from './signal.js';
import { connectionPath } from './path.js';
import { DisplayChannel } from './channel.js';
import { isNo, closesInvitation, parseRefusal, formatWait, defaultCooldownMs } from './refusal.js';
import { startMessenger, sessionChanged } from './messenger.js';

// connectTimeout bounds everything from join to an authenticated session.
const connectTimeout = 45000;
// contactJoinWait is how long a session with a contact keeps joining while
// the server does not know its id yet: the other computer registers it
// when it learns of the Accept, at the same moment as this page.
const contactJoinWait = 15000;
// queueTimeout is the server's longest wait in line (60 s), after which the
// attempt gets connectTimeout again.
const queueTimeout = 60000;
// pathEvery is how often the path is read again in a session: ICE may
// switch pairs, and a peer-reflexive candidate becomes the signalled one.
const pathEvery = 5000;
// verdictWait is how long a "wrong code" from the server waits for the
// handshake's own verdict, which also says how many tries are left.
const verdictWait = 2000;

const el = (id) => document.querySelector(`[data-testid="${id}"]`);

const status = {
  phase: 'loading',
  state: '',
  rfb: 'none',
  path: '',
  pathPair: '',
  error: null,
  endReason: '',
  interrupted: false,
  canReconnect: false,
  reconnectIn: 0,
  clipboard: false,
  clipboardText: '',
  // files: each transfer's state by id, this session's.
  files: {},
  get chatLines() { return view.chatLines; },
  get viewOnly() { return rfb ? rfb.viewOnly : true; },
  get stateText() { return view.stateText(); },
  get scale() { return view.scale; },
  get fullscreen() { return !!document.fullscreenElement; },
  get scaled() { return rfb?.assistScaled?.decoded ?? 0; },
  get scaledFailed() { return rfb?.assistScaled?.failed ?? 0; },
};
window.assistExpertPage = status;

let attempt = null; // the current connection: {sig, pc, session, ...}
let rfb = null;
// view is the session's part of the page (web/session/view.js, shared
// with assist join's page), made again for each session: it names the
// person helped.
let view = newView('');
// files is the session's files panel (web/session/files.js, shared with
// assist join's page), made when a session starts.
let files = null;
// lastJoin is the code and name of the last attempt, for Reconnect. It is
// kept in memory only: the code's words are a secret.
let lastJoin = null;
// retryAt is when Reconnect may be used again after the novice said no
// (ms since the epoch; 0: now). Asking sooner would only be refused: the
// novice's side rests the invitation for a while after each no.
let retryAt = 0;
let retryTimer = 0;

// restAfterNo disables Reconnect for waitMs, showing the time left.
function restAfterNo(waitMs) {
  retryAt = Date.now() + waitMs;
  clearInterval(retryTimer);
  retryTimer = setInterval(() => {
    if (Date.now() >= retryAt) {
      clearInterval(retryTimer);
      retryTimer = 0;
      retryAt = 0;
    }
    update();
  }, 1000);
}

// ---- Advice for every way joining can fail.

// Each entry: [message, hint, whether trying the same code again may
// work]. Maps, not objects: a code from the server must not find
// Object.prototype's members.
const serverErrors = new Map([
  ['unknown', ['No invitation is waiting under this number.', 'Check the code. If it is right, the invitation may have expired or the other computer may be offline: ask for a new one.', false]],
  ['expired', ['This invitation has expired.', 'Ask the other person for a new code.', false]],
  ['offline', ['The other computer is not connected to the server right now.', 'Ask the other person to check that Assist is still waiting for you, then try again.', true]],
  ['busy', ['Another expert is connected to this invitation.', 'Try again when they have left.', true]],
  ['rate-limited', ['The server is receiving too many requests from you.', 'Wait a minute, then try again.', true]],
]);

const handshakeErrors = new Map([
  ['bad-code', ['That is not a code.', '', false]],
  ['no-name', ['Enter your name first.', 'The other person sees it before they decide whether to let you in.', false]],
  ['wrong-password', ['Wrong code.', 'Check the two words with the person who gave you the code, then try again. After a few wrong tries the code stops working.', false]],
  ['unknown-invitation', ['The other computer is not serving this code any more.', 'Ask for a new code.', false]],
  ['version', ['The other computer runs an incompatible version of Assist.', 'Ask the other person to update Assist.', false]],
  ['not-assist', ['The other end does not speak Assist.', 'Check the code and the server address.', false]],
  ['unreachable', ['Could not connect to the other computer.', 'Check that it is still waiting, then Reconnect. A firewall may block the connection.', true]],
  ['ice-failed', ['Could not reach the other computer: no network path between you worked.', 'Reconnect to try again. If it keeps failing, a firewall blocks the connection and the server offers no relay that gets through.', true]],
  ['lost', ['The connection to the other computer was lost.', 'Reconnect once it is back; the other person will be asked again.', true]],
  ['contact-no-show', ['The other computer did not start the session.', 'If this browser is not confirmed yet, their Assist refuses it: confirm it under “Your devices”. Otherwise ask them to ask again.', false]],
]);

// wrongCode is the advice after a wrong code, with how many tries are
// left when the other computer said so (left: a number, or undefined).
function wrongCode(left) {
  const t = handshakeErrors.get('wrong-password');
  if (typeof left !== 'number') return t;
  if (left <= 0) return ['Wrong code: no tries left, so this code no longer works.', 'Ask the other person for a new code.', false];
  return [`Wrong code: ${left === 1 ? '1 try' : `${left} tries`} left.`, t[1], false];
}

// describe turns a failure into {kind, text: [message, hint], retry}.
function describe(err) {
  if (err instanceof SignalError) {
    if (err.code === 'bye') {
      if (err.reason === 'auth-failed') return { kind: 'wrong-password', text: handshakeErrors.get('wrong-password'), retry: false };
      const no = parseRefusal(err.reason);
      if (no && no.kind === 'denied') return { kind: 'denied', text: [err.reason, 'Reconnect works again when the wait is over.'], retry: true, waitMs: no.waitMs };
      if (no) return { kind: 'closed', text: [err.reason, ''], retry: false };
      const why = err.reason ? ` (${err.reason})` : '';
      return { kind: 'bye', text: [`The other computer ended the attempt${why}.`, 'Reconnect to try again, or ask for a new code.'], retry: true };
    }
    if (err.code === 'peer-left') return { kind: 'bye', text: ['The other computer left the server during the attempt.', 'Ask the other person to check that Assist is still waiting for you, then Reconnect.'], retry: true };
    if (err.code === 'closed' || err.code === 'going-away') return { kind: 'server', text: [`${err.message[0].toUpperCase()}${err.message.slice(1)}.`, 'Check your network connection, then Reconnect.'], retry: true };
    if (err.code === 'malformed') return { kind: 'signalling', text: [`Bad signalling from the server: ${err.message}.`, 'Try again; if it keeps happening, the server is broken.'], retry: true };
    const t = serverErrors.get(err.code);
    if (t) return { kind: err.code, text: t, retry: t[2] };
    return { kind: 'server-error', text: [`The server refused: ${err.message || err.code}.`, 'Try again later.'], retry: true };
  }
  const t = handshakeErrors.get(err.kind);
  if (t && err.kind === 'lost' && err.message) {
    return { kind: 'lost', text: [`The connection to the other computer was lost: ${err.message}.`, t[1]], retry: true };
  }
  if (t && err.kind === 'wrong-password') return { kind: err.kind, text: wrongCode(err.attemptsLeft), retry: false };
  if (t) {
    const text = err.kind === 'bad-code' ? [String(err.message).replace(/^invitation: not a short code: /, ''), ''] : t;
    return { kind: err.kind, text, retry: t[2] };
  }
  return { kind: 'failed', text: [`Could not connect: ${err.message || err}.`, 'Try again.'], retry: true };
}

// showBanner shows a failure (tone "error") or news that needs no fixing
// (tone "notice": the session ended, the connection is interrupted).
function showBanner(kind, message, hint, tone = 'error') {
  const banner = el('error');
  banner.dataset.kind = kind;
  banner.dataset.tone = tone;
  banner.setAttribute('role', tone === 'error' ? 'alert' : 'status');
  el('error-message').textContent = message;
  el('error-hint').textContent = hint;
  banner.hidden = false;
}

function showError(kind, message, hint) {
  status.error = { kind, message };
  showBanner(kind, message, hint);
}

function hideError() {
  el('error').hidden = true;
}

// ---- The controls.

// badgeState is what the state badge shows.
function badgeState() {
  switch (status.phase) {
    case 'session':
      return status.interrupted ? 'interrupted' : status.state;
    case 'ended':
      return status.error && status.error.kind === 'lost' ? 'lost' : 'ended';
    case 'connecting':
      return 'connecting';
  }
  return 'idle';
}

// inSession tells the messenger that this page is busy with a session.
let wasInSession = false;

function update() {
  const busy = status.phase === 'session' || status.phase === 'connecting';
  if (busy !== wasInSession) {
    wasInSession = busy;
    sessionChanged(busy);
  }
  // The session view from the first connection attempt until the expert
  // closes it after the end; the home screen (contacts, requests, join
  // by code) otherwise.
  const shown = status.phase === 'connecting' || status.phase === 'session' || (status.phase === 'ended' && !closed);
  el('home').hidden = shown;
  el('session').hidden = !shown;
  const s = badgeState();
  const live = status.phase === 'session' && status.state !== 'ended';
  view.set({ state: s, live, clipboard: status.clipboard, path: status.path, reason: s === 'ended' ? status.endReason : '' });
  document.title = shown ? `${view.stateText()} — Assist` : 'Assist — help someone';
  const joinable = status.phase === 'ready' || status.phase === 'ended' || status.phase === 'failed';
  el('code').disabled = !joinable;
  el('connect').disabled = !joinable;
  const reconnect = el('reconnect');
  reconnect.hidden = !(joinable && status.canReconnect && lastJoin);
  const wait = retryAt - Date.now();
  status.reconnectIn = wait > 0 ? Math.ceil(wait / 1000) : 0;
  reconnect.disabled = reconnect.hidden || wait > 0;
  reconnect.textContent = wait > 0 ? `Reconnect (in ${formatWait(wait)})` : 'Reconnect';
}

function progress(text) {
  el('progress').textContent = text;
  view.set({ progress: text });
}

// ---- The session view.

// closed: the expert closed the view of an ended session (back home).
let closed = false;

function newView(name) {
  return new SessionView(el('session'), name, {
    requestControl: () => {
      const a = attempt;
      if (!a || !a.session) return;
      a.session.requestControl().catch((e) => {
        view.set({ askingControl: false });
        addNote(`Could not ask for control: ${e.message}`);
      });
    },
    requestClipboard: () => {
      const a = attempt;
      if (!a || !a.session) return;
      a.session.requestClipboard().catch((e) => {
        view.set({ askingClipboard: false });
        addNote(`Could not ask to share clipboards: ${e.message}`);
      });
    },
    giveBackControl: () => {
      const a = attempt;
      if (!a || !a.session) return;
      a.session.giveBackControl().catch((e) => addNote(`Could not give control back: ${e.message}`));
    },
    leave,
    close: () => {
      closed = true;
      hideError();
      update();
      el(lastJoin ? 'code' : 'name').focus();
    },
    chat: (text) => {
      const a = attempt;
      if (!a || !a.session) return false;
      addChat('You', text);
      a.session.sendChat(text).catch((err) => addNote(`Not sent: ${err.message}`));
      return true;
    },
  });
}

function addChat(from, text) {
  view.addChat(from, text);
}

function addNote(text) {
  view.addNote(text);
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
  const r = openScreen(el('screen'), new DisplayChannel(stream), {
    scale: view.scale,
    onClipboard: (text) => {
      status.clipboardText = text;
      view.clipboardReceived(text);
    },
  });
  r.addEventListener('connect', () => {
    status.rfb = 'connected';
    update();
  });
  r.addEventListener('disconnect', () => {
    status.rfb = 'disconnected';
    if (rfb === r) {
      rfb = null;
      view.attach(null);
    }
    // The picture went away while the session goes on: try once more.
    if (attempt === a && status.phase === 'session' && (status.state === 'viewing' || status.state === 'controlling' || status.state === 'control-asked')) {
      addNote('The picture of the desktop was lost; reconnecting it.');
      setTimeout(() => openDisplay(a), 1000);
    }
  });
  rfb = r;
  view.attach(r);
  update();
}

function closeDisplay() {
  if (rfb) {
    const r = rfb;
    rfb = null;
    view.attach(null);
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
      status.clipboard = (ev.rights || '').split('+').includes('clipboard');
      if (files) files.setAllowed((ev.rights || '').split('+').includes('files'), ev.reason || '');
      if (ev.reason) view.addReason(ev.reason);
      if (ev.state === 'viewing' || ev.state === 'control-asked' || ev.state === 'controlling') openDisplay(a);
      if (ev.state === 'controlling') view.focusScreen();
      break;
    case 'chat':
      addChat(view.name || 'Them', ev.text);
      break;
    case 'file':
      if (files && ev.file) {
        files.event(ev.file);
        status.files[ev.file.id] = ev.file.state;
      }
      break;
    case 'ended':
      ended(a, ev.reason);
      break;
  }
  update();
}

// startFiles shows the files panel of session: the bytes move in
// assist.wasm, over the session's files channel, as assist join moves them.
function startFiles(a, session) {
  status.files = {};
  files = new FilesPanel(view.filesPanel, view.name, {
    requestFiles: () => session.requestFiles().catch((e) => addNote(`Could not ask to exchange files: ${e.message}`)),
    sendFile: (f) => session.sendFile(f).catch((e) => addNote(`${f.name} was not sent: ${e.message}`)),
    answer: (id, accept) => session.answerFile(id, accept),
    cancel: (id) => session.cancelFile(id),
  });
}

// ended: the novice's side ended the session (or the session layer lost
// the data channel), and said why.
function ended(a, reason) {
  if (attempt !== a) return;
  status.endReason = reason || '';
  const why = reasonText(reason, view.name);
  const note = `The session has ended${why ? '. ' + why : ''}.`;
  finish(a, note);
  status.canReconnect = true;
  if (closesInvitation(reason)) {
    status.canReconnect = false;
    showBanner('ended', note, 'The person you are helping said no too many times, so this invitation is closed. Ask them for a new code if they still want help.', 'notice');
  } else if (isNo(reason)) {
    restAfterNo(defaultCooldownMs);
    showBanner('ended', note, `The person you are helping said no. You can ask again in about ${Math.round(defaultCooldownMs / 60000)} minutes: Reconnect is offered then.`, 'notice');
  } else {
    showBanner('ended', note, 'Reconnect if the other person still wants your help: they will be asked again.', 'notice');
  }
  update();
}

// finish ends an attempt or a session for good and tells why.
function finish(a, note) {
  if (attempt !== a) return;
  attempt = null;
  clearTimeout(a.timer);
  clearTimeout(a.pathTimer);
  closeDisplay();
  a.sig.close();
  if (a.pc) a.pc.close();
  status.interrupted = false;
  status.clipboard = false;
  if (status.phase === 'session') {
    status.phase = 'ended';
    status.state = 'ended';
    progress(note || 'Session ended.');
    addNote(note || 'Session ended.');
  }
  update();
}

// fail ends a connection attempt, or a session, with advice.
function fail(a, err) {
  if (attempt !== a) return;
  const d = describe(err);
  showError(d.kind, d.text[0], d.text[1]);
  const wasSession = status.phase === 'session';
  finish(a, wasSession ? d.text[0] : undefined);
  if (!wasSession) {
    status.phase = 'failed';
    progress('');
  }
  status.canReconnect = d.retry;
  if (d.waitMs) restAfterNo(d.waitMs);
  update();
}

// ---- The network path during a session.
//
// The page cannot restart ICE (the command-line expert can), so a session
// whose path is gone ends, with Reconnect offered. Two things tell it is
// gone: the browser's ICE giving up ("failed", some 15 seconds after the
// last packet), or, sooner, the path going quiet ("disconnected", a few
// seconds) after the server said the novice's agent left it too: a
// computer that lost both is down, or its Assist stopped.

function lost(a, why) {
  fail(a, { kind: 'lost', message: why });
}

function onConnectionState(a) {
  if (attempt !== a) return;
  const state = a.pc.connectionState;
  if (!a.session) {
    if (state === 'failed') fail(a, { kind: 'ice-failed', message: 'ICE failed' });
    return;
  }
  switch (state) {
    case 'failed':
      lost(a, 'no packet came through for a while');
      return;
    case 'disconnected':
      if (a.peerLeft) {
        lost(a, 'its Assist stopped, or it lost its network');
        return;
      }
      if (!status.interrupted) {
        status.interrupted = true;
        showBanner('interrupted', 'The connection to the other computer is interrupted.', 'Waiting for it to come back…', 'notice');
        addNote('The connection is interrupted.');
      }
      break;
    case 'connected':
      if (status.interrupted) {
        status.interrupted = false;
        hideError();
        addNote('The connection is back.');
        refreshPath(a);
      }
      break;
  }
  update();
}

// onSignalEnd: the server, or the novice through it, ended the pairing,
// or our connection to the server broke.
function onSignalEnd(a, err) {
  if (attempt !== a) return;
  if (!a.session && a.checking && err instanceof SignalError && err.code === 'bye' && err.reason === 'auth-failed') {
    // The handshake ends with the novice's verdict, which says how many
    // tries are left: let it tell, unless it does not within a moment.
    setTimeout(() => fail(a, err), verdictWait);
    return;
  }
  if (!a.session) {
    fail(a, err);
    return;
  }
  // Once authenticated the session has its own channel: the server going
  // away does not end it, nor does the novice's agent losing the server
  // while the path between us still works. (When the novice ends the
  // session, its "bye" follows the session's own end.)
  if (err.code === 'peer-left') {
    a.peerLeft = true;
    if (a.pc.connectionState === 'disconnected' || a.pc.connectionState === 'failed') {
      lost(a, 'its Assist stopped, or it lost its network');
    }
  }
}

async function refreshPath(a) {
  try {
    const p = await connectionPath(a.pc, a.remote.list);
    if (attempt !== a || !p) return;
    status.path = p.path;
    status.pathPair = p.pair;
    update();
  } catch {
    // Statistics are best effort.
  }
}

// ---- Connecting.

function signalURL() {
  const u = new URL('/v1/signal', location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

// connect joins a novice: by the code typed, or (contact set) the session
// with a contact that the messenger arranged: {invitation, password, peer}.
async function connect(code, name, contact) {
  if (attempt) return;
  hideError();
  status.error = null;
  status.endReason = '';
  status.canReconnect = false;
  const parsed = contact ? { lookup: contact.invitation } : window.assistExpert.parseCode(code);
  if (parsed.error || name === '') {
    const d = describe(parsed.error || { kind: 'no-name' });
    showError(d.kind, d.text[0], d.text[1]);
    status.phase = 'failed';
    update();
    el(parsed.error ? 'code' : 'name').focus();
    return;
  }
  // A contact session's id is used once: no Reconnect for it.
  lastJoin = contact ? null : { code, name };
  const a = { sig: new Signalling(signalURL()), pc: null, session: null, timer: 0, pathTimer: 0, remote: new RemoteCandidates(), peerLeft: false };
  attempt = a;
  status.phase = 'connecting';
  status.state = '';
  status.path = '';
  status.pathPair = '';
  status.interrupted = false;
  status.rfb = 'none';
  closed = false;
  view = newView(contact ? contact.peer : '');
  files = null;
  update();
  a.timer = setTimeout(() => fail(a, { kind: 'unreachable', message: 'timed out' }), connectTimeout);
  a.sig.onEnd = (err) => onSignalEnd(a, err);
  // The other person is being connected to another helper: wait in line
  // (the server pairs us when they are done, or says "busy").
  a.sig.onQueued = () => {
    if (attempt !== a) return;
    progress('Another helper is connecting to this person; you are next in line…');
    clearTimeout(a.timer);
    a.timer = setTimeout(() => fail(a, { kind: 'unreachable', message: 'timed out' }), queueTimeout + connectTimeout);
  };
  try {
    progress(contact ? `Connecting to ${contact.peer}…` : 'Looking for the other computer…');
    const paired = contact ? await joinContact(a, contact) : await joinAgain(a, parsed.lookup, [], 0);
    if (attempt !== a) return;
    progress('Connecting…');
    await setUpPeer(a, paired, code, name, contact);
  } catch (e) {
    // A contact session's id that never appears: the other side did not
    // start it (it refused this device, or gave up).
    const noShow = contact && e instanceof SignalError && (e.code === 'unknown' || e.code === 'offline');
    fail(a, noShow ? { kind: 'contact-no-show', message: e.message } : e);
  }
}

// joinContact joins a contact session's id, again while the server does
// not know it yet (the other computer registers it as this page learns of
// the Accept).
function joinContact(a, contact) {
  return joinAgain(a, contact.invitation, ['unknown', 'offline'], Date.now() + contactJoinWait);
}

// goingAwayTries is how many times a join is made again after the server
// closed the connection with "going away" (it is shutting down; a load
// balancer sends the next connection to another server).
const goingAwayTries = 5;

// joinAgain joins id, on a new connection each time the server refuses
// with a code in again (until the time until) or goes away before pairing.
async function joinAgain(a, id, again, until) {
  let away = 0;
  for (;;) {
    const sig = a.sig;
    // A refused join is tried again, not the end of the attempt.
    sig.onEnd = () => {};
    try {
      const paired = await sig.join(id);
      sig.onEnd = (err) => onSignalEnd(a, err);
      return paired;
    } catch (e) {
      if (attempt !== a || !(e instanceof SignalError)) throw e;
      const retry = e.code === 'going-away' ? ++away <= goingAwayTries : again.includes(e.code) && Date.now() <= until;
      if (!retry) throw e;
    }
    await new Promise((r) => setTimeout(r, 500));
    if (attempt !== a) throw new SignalError('closed', 'left');
    const next = new Signalling(signalURL());
    next.onQueued = sig.onQueued;
    a.sig = next;
  }
}

async function setUpPeer(a, paired, code, name, contact) {
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
  pc.addEventListener('connectionstatechange', () => onConnectionState(a));
  a.sig.onRelay = async (data) => {
    try {
      const m = parseSignal(data);
      if (a.session) {
        // Late candidates are welcome; nothing else is expected once
        // authenticated, and a bad message must not end a session that
        // works: the signalling is untrusted.
        if (m.type !== 'candidate' && m.type !== 'end-of-candidates') throw new SignalError('malformed', `unexpected ${m.type} in a session`);
      }
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
      const err = e instanceof SignalError ? e : new SignalError('malformed', e.message);
      if (a.session) {
        console.warn(`signalling ignored: ${err.message}`);
        return;
      }
      fail(a, err);
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
  a.checking = true;
  const session = await window.assistExpert.connect({
    code,
    invitation: contact ? contact.invitation : '',
    password: contact ? contact.password : '',
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
  startFiles(a, session);
  clearTimeout(a.timer);
  status.phase = 'session';
  status.state = status.state || 'asking';
  progress('');
  addNote('Connected. The other person decides what you may see and do.');
  update();
  // The path right away, again soon (ICE often settles on a better pair
  // within a second or two, and a peer-reflexive candidate becomes the
  // signalled one), on every change of pair, and now and then.
  const ice = pc.sctp && pc.sctp.transport && pc.sctp.transport.iceTransport;
  if (ice) ice.addEventListener('selectedcandidatepairchange', () => refreshPath(a));
  let delay = 500;
  const tick = () => {
    refreshPath(a);
    delay = Math.min(delay * 2, pathEvery);
    a.pathTimer = setTimeout(tick, delay);
  };
  tick();
  // The server may already have said the novice's agent left it.
  onConnectionState(a);
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

// Reconnect joins again with the code and name of the last attempt: after
// a failure that trying again may fix, or after a session ended.
el('reconnect').addEventListener('click', () => {
  if (lastJoin && Date.now() >= retryAt) connect(lastJoin.code, lastJoin.name);
});

// leave: the expert clicked Leave, in a session or while connecting.
function leave() {
  const a = attempt;
  if (!a) return;
  if (a.session) {
    a.session.leave().finally(() => {
      if (attempt !== a) return;
      finish(a, 'You left the session.');
      status.canReconnect = true;
      showBanner('left', 'You left the session.', 'Reconnect to ask to join again.', 'notice');
      update();
    });
  } else {
    finish(a);
    status.phase = 'ready';
    progress('');
    update();
  }
}

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
  // A company sign-in comes back with #signed-in=USER: that one is the
  // messenger's (messenger.js), not a code.
  if (fromURL.startsWith('signed-in=')) fromURL = '';
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
  startMessenger({
    startSession: (c) => connect('', c.name, c),
    inSession: () => status.phase === 'session' || status.phase === 'connecting',
  });
  const name = el('name').value.trim();
  if (fromURL && name !== '') {
    connect(fromURL, name);
  } else if (fromURL) {
    // The other person sees the name before deciding: ask for it first.
    progress('Enter your name, then Connect.');
    el('name').focus();
  } else {
    el('code').focus();
  }
}

update();
load();
