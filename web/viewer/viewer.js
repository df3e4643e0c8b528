// The expert's viewer: noVNC shows the novice's desktop over the "rfb"
// WebSocket; the "events" WebSocket carries the session state and the
// chat (see package webview for both protocols).
//
// window.assistViewer reports what the page is doing, for tests:
//   rfb:    "connecting" | "connected" | "disconnected"
//   events: "connecting" | "open" | "closed"
//   state:  the session state ("connecting", "viewing", "control-asked",
//           "controlling", "ended")
//   viewOnly: whether noVNC drops keyboard and mouse input
//   chatLines: how many lines the chat pane shows
//   clipboard: whether the novice shares the clipboard
//   clipboardText: the last text received from the novice's clipboard
import RFB from './novnc/core/rfb.js';

const el = (id) => document.querySelector(`[data-testid="${id}"]`);
const novice = document.body.dataset.novice || 'your contact';

const labels = {
  connecting: 'Connecting…',
  viewing: 'Viewing',
  'control-asked': 'Asking for control…',
  controlling: 'You have control',
  ended: 'Session ended',
};

let rfb = null;
let events = null;
let endReason = '';
let askPending = false;
let askClipboardPending = false;

const status = {
  rfb: 'connecting',
  events: 'connecting',
  state: 'connecting',
  chatLines: 0,
  clipboard: false,
  clipboardText: '',
  get viewOnly() { return rfb ? rfb.viewOnly : true; },
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

// update makes the controls match the state.
function update() {
  const s = status.state;
  const label = s === 'ended' && endReason ? `Session ended: ${endReason}` : (labels[s] || s);
  const badge = el('state');
  badge.textContent = label;
  badge.dataset.state = s;
  document.title = `${label} — Helping ${novice}`;
  const live = status.events === 'open' && s !== 'ended';
  el('request-control').disabled = !live || s !== 'viewing' || askPending;
  const sees = s === 'viewing' || s === 'control-asked' || s === 'controlling';
  el('request-clipboard').disabled = !live || !sees || status.clipboard || askClipboardPending;
  el('clipboard-panel').hidden = !(live && status.clipboard);
  el('chat-input').disabled = !live;
  el('chat-send').disabled = !live;
  if (rfb) {
    // The novice's consent gate drops input anyway unless control was
    // granted; this only avoids sending it.
    rfb.viewOnly = s !== 'controlling';
  }
}

function connectDisplay() {
  status.rfb = 'connecting';
  const r = new RFB(el('screen'), wsURL('rfb'), { shared: true, wsProtocols: ['binary'] });
  r.scaleViewport = true;
  r.resizeSession = false;
  r.viewOnly = true;
  r.background = '#20242a';
  allowClipboardWhileViewOnly(r);
  r.addEventListener('clipboard', (e) => {
    status.clipboardText = e.detail.text;
    el('clipboard-received').value = e.detail.text;
  });
  r.addEventListener('connect', () => {
    status.rfb = 'connected';
    hideBanner();
    update();
  });
  r.addEventListener('disconnect', () => {
    status.rfb = 'disconnected';
    if (rfb === r) rfb = null;
    if (status.state === 'ended' || status.events === 'closed') return;
    showBanner(`Disconnected: the picture of ${novice}'s desktop was lost.`,
      'The session may still be on: try Reconnect. If that fails, check the terminal where assist join runs.', true);
  });
  r.addEventListener('securityfailure', (e) => {
    showBanner(`Disconnected: the desktop refused the viewer (${e.detail.reason || 'security failure'}).`,
      'Run assist join again.', false);
  });
  rfb = r;
  update();
}

// The clipboard is a right of its own: the novice may share it with an
// expert who only views. noVNC (1.7.0) ignores clipboard messages while
// viewOnly, which here only means "no control", so they are let through
// with viewOnly lifted for exactly their handling (the private field, not
// the setter, which would grab the keyboard). The novice's side sends and
// accepts clipboard text only while the clipboard is shared.
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

function addChat(ev) {
  const li = document.createElement('li');
  const time = document.createElement('span');
  time.className = 'time';
  const t = ev.time ? new Date(ev.time) : new Date();
  time.textContent = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const from = document.createElement('span');
  from.className = 'from';
  // The server marks the expert's own lines with no "from".
  from.textContent = ev.from ? `${ev.from}:` : 'You:';
  const text = document.createElement('span');
  text.textContent = ev.text || '';
  li.append(time, from, text);
  if (ev.type === 'error') {
    li.className = 'error';
    from.textContent = '';
  }
  appendLog(li);
}

function addNote(text) {
  const li = document.createElement('li');
  li.className = 'note';
  li.textContent = text;
  appendLog(li);
}

function appendLog(li) {
  const log = el('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
  status.chatLines = log.children.length;
}

function handleEvent(ev) {
  switch (ev.type) {
    case 'state':
      status.state = ev.state;
      status.clipboard = !!ev.clipboard;
      askPending = false;
      askClipboardPending = false;
      // A reason comes with some changes ("Alice declined").
      if (ev.text) addNote(ev.text);
      if (ev.state === 'controlling' && rfb) rfb.focus();
      break;
    case 'ended':
      status.state = 'ended';
      status.clipboard = false;
      endReason = ev.text || '';
      showBanner(`Session ended${endReason ? ': ' + endReason : ''}.`,
        `To help ${novice} again, ask for a new invitation and run assist join with it.`, false);
      if (rfb) rfb.disconnect();
      break;
    case 'chat':
      addChat(ev);
      break;
    case 'error':
      askPending = false;
      askClipboardPending = false;
      addChat(ev);
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
    showBanner(`Disconnected: lost the connection to assist join${e.reason ? ' (' + e.reason + ')' : ''}.`,
      'If assist join is still running in your terminal, reload this page; if it stopped, run assist join again with the invitation.', false);
    if (rfb) rfb.disconnect();
  });
  events = ws;
}

function send(msg) {
  if (!events || events.readyState !== WebSocket.OPEN) return false;
  events.send(JSON.stringify(msg));
  return true;
}

el('request-control').addEventListener('click', () => {
  if (send({ type: 'request_control' })) {
    askPending = true;
    update();
  }
});

el('request-clipboard').addEventListener('click', () => {
  if (send({ type: 'request_clipboard' })) {
    askClipboardPending = true;
    update();
  }
});

el('clipboard-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = el('clipboard-text').value;
  if (text === '' || !rfb || !status.clipboard) return;
  withInput(rfb, () => rfb.clipboardPasteFrom(text));
  el('clipboard-text').value = '';
});

el('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = el('chat-input');
  const text = input.value.trim();
  if (text === '' || !send({ type: 'chat', text })) return;
  input.value = '';
  input.focus();
});

el('reconnect').addEventListener('click', () => {
  hideBanner();
  if (!rfb) connectDisplay();
});

connectEvents();
connectDisplay();
