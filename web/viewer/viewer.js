// The expert's viewer for `assist join`: noVNC shows the novice's desktop
// over the "rfb" WebSocket; the "events" WebSocket carries the session
// state, the path and the chat (see package webview for both protocols).
// The page itself is session/view.js, shared with the server's web app.
//
// window.assistViewer reports what the page is doing, for tests:
//   rfb:    "connecting" | "connected" | "disconnected"
//   events: "connecting" | "open" | "closed"
//   state:  the session state ("connecting", "asking", "viewing",
//           "control-asked", "controlling", "ended")
//   stateText: the sentence the page shows for it
//   viewOnly: whether noVNC drops keyboard and mouse input
//   chatLines: how many lines the chat pane shows
//   clipboard: whether the novice shares the clipboard
//   clipboardText: the last text received from the novice's clipboard
//   scale: "fit" or "1:1"; fullscreen: whether the page is full screen
//   files: each transfer's state by id; uploads: uploads under way
//   scaled: scaled pictures drawn (session/scaled.js); scaledFailed: not decoded
import { SessionView } from './session/view.js';
import { openScreen } from './session/screen.js';
import { FilesPanel } from './session/files.js';

const el = (id) => document.querySelector(`[data-testid="${id}"]`);
const novice = document.body.dataset.novice || '';

let rfb = null;
let events = null;
let endReason = '';
let left = false;

const view = new SessionView(el('session'), novice, {
  requestControl: () => send({ type: 'request_control' }),
  requestClipboard: () => send({ type: 'request_clipboard' }),
  giveBackControl: () => send({ type: 'give_back_control' }),
  leave: () => {
    left = true;
    send({ type: 'leave' });
  },
  chat: (text) => send({ type: 'chat', text }),
});

// The files panel, when assist join moves files (data-files on <body>).
// An upload is a POST of the file to the page's own server, which sends it.
const files = document.body.dataset.files === 'true' ? new FilesPanel(view.filesPanel, novice, {
  requestFiles: () => send({ type: 'request_files' }),
  answer: (id, accept) => send({ type: accept ? 'file_accept' : 'file_refuse', text: id }),
  cancel: (id) => send({ type: 'file_cancel', text: id }),
  sendFile: (f) => {
    status.uploads++;
    fetch('upload', { method: 'POST', body: f, headers: { 'X-Assist-Name': encodeURIComponent(f.name) } })
      .then(async (r) => {
        if (!r.ok) view.addChat('', `${f.name} was not sent: ${(await r.text()).trim()}`, new Date().toISOString(), true);
      })
      .catch((e) => view.addChat('', `${f.name} was not sent: ${e.message}`, new Date().toISOString(), true))
      .finally(() => { status.uploads--; });
  },
}) : null;

const status = {
  uploads: 0,
  files: {},
  rfb: 'connecting',
  events: 'connecting',
  state: 'connecting',
  clipboardText: '',
  get stateText() { return view.stateText(); },
  get chatLines() { return view.chatLines; },
  get clipboard() { return view.model.clipboard; },
  get viewOnly() { return rfb ? rfb.viewOnly : true; },
  get scale() { return view.scale; },
  get fullscreen() { return !!document.fullscreenElement; },
  get scaled() { return rfb?.assistScaled?.decoded ?? 0; },
  get scaledFailed() { return rfb?.assistScaled?.failed ?? 0; },
};
window.assistViewer = status;

function wsURL(path) {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

// showBanner explains what went wrong and what to do about it.
function showBanner(reason, hint, canReconnect) {
  el('disconnected-reason').textContent = reason;
  el('disconnected-hint').textContent = hint;
  el('reconnect').hidden = !canReconnect;
  el('disconnected').hidden = false;
}

function hideBanner() {
  el('disconnected').hidden = true;
}

// update makes the view match the state.
function update() {
  const live = status.events === 'open' && status.state !== 'ended';
  view.set({ state: status.state, live });
  document.title = `${view.stateText()} — Helping ${novice}`;
}

function connectDisplay() {
  status.rfb = 'connecting';
  const r = openScreen(el('screen'), wsURL('rfb'), {
    scale: view.scale,
    onClipboard: (text) => {
      status.clipboardText = text;
      view.clipboardReceived(text);
    },
  });
  r.addEventListener('connect', () => {
    status.rfb = 'connected';
    hideBanner();
    view.attach(r);
  });
  r.addEventListener('disconnect', () => {
    status.rfb = 'disconnected';
    if (rfb === r) {
      rfb = null;
      view.attach(null);
    }
    if (status.state === 'ended' || status.events === 'closed') return;
    showBanner(`Disconnected: the picture of ${novice}'s screen was lost.`,
      'The session may still be on: try Reconnect. If that fails, check the terminal where assist join runs.', true);
  });
  r.addEventListener('securityfailure', (e) => {
    showBanner(`Disconnected: the screen refused the viewer (${e.detail.reason || 'security failure'}).`,
      'Run assist join again.', false);
  });
  rfb = r;
  view.attach(r);
}

function handleEvent(ev) {
  switch (ev.type) {
    case 'state':
      // assist join says "connecting" from the moment the session is
      // authenticated: the page is open, so the novice is being asked.
      status.state = ev.state === 'connecting' ? 'asking' : ev.state;
      if (files) files.setAllowed(!!ev.files, ev.text || '');
      view.set({ clipboard: !!ev.clipboard, path: typeof ev.path === 'string' ? ev.path : view.model.path, state: status.state });
      // A reason comes with some changes ("Alice declined").
      if (ev.text) view.addReason(ev.text);
      if (ev.state === 'controlling') view.focusScreen();
      break;
    case 'ended':
      status.state = 'ended';
      endReason = ev.text || '';
      view.set({ state: 'ended', live: false, clipboard: false, reason: endReason });
      if (left) {
        showBanner('You left the session.', `To help ${novice} again, ask for a new invitation and run assist join with it.`, false);
      } else {
        showBanner(`${view.stateText()}.`,
          `To help ${novice} again, ask for a new invitation and run assist join with it.`, false);
      }
      view.addNote(`${view.stateText()}.`);
      if (rfb) rfb.disconnect();
      break;
    case 'file':
      if (files && ev.file) {
        files.event(ev.file);
        status.files[ev.file.id] = ev.file.state;
      }
      break;
    case 'chat':
      // The server marks the expert's own lines with no "from".
      view.addChat(ev.from || '', ev.text || '', ev.time);
      break;
    case 'error':
      view.set({ askingControl: false, askingClipboard: false });
      view.addChat('', ev.text || '', ev.time, true);
      break;
  }
  update();
}

function connectEvents() {
  status.events = 'connecting';
  const ws = new WebSocket(wsURL('events'));
  ws.addEventListener('open', () => {
    status.events = 'open';
    update();
  });
  ws.addEventListener('message', (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    if (ev && typeof ev.type === 'string') handleEvent(ev);
  });
  ws.addEventListener('close', (e) => {
    status.events = 'closed';
    if (events === ws) events = null;
    update();
    if (status.state === 'ended') return;
    if (left) {
      status.state = 'ended';
      update();
      showBanner('You left the session.', `To help ${novice} again, ask for a new invitation and run assist join with it.`, false);
    } else {
      showBanner(`Disconnected: lost the connection to assist join${e.reason ? ' (' + e.reason + ')' : ''}.`,
        'If assist join is still running in your terminal, reload this page; if it stopped, run assist join again with the invitation.', false);
    }
    if (rfb) rfb.disconnect();
  });
  events = ws;
}

function send(msg) {
  if (!events || events.readyState !== WebSocket.OPEN) return false;
  events.send(JSON.stringify(msg));
  return true;
}

el('reconnect').addEventListener('click', () => {
  hideBanner();
  if (!rfb) connectDisplay();
});

connectEvents();
connectDisplay();
update();
