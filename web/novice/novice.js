// The novice's page: shows what assist invite pushes over the "events"
// WebSocket (the whole status, chat lines, notices; see package
// novicepage) and sends what the novice clicks. It decides nothing: a
// click is a request, and the page changes when the new status arrives,
// so every open tab shows the same thing.
//
// window.assistNovice reports what the page is doing, for tests:
//   socket:    "connecting" | "open" | "closed"
//   state:     the session state ("waiting", "asking", "viewing",
//              "control-asked", "controlling", "ended"), or "stopped"
//   question:  the id of the question shown, 0 if none
//   countdown: the question's countdown as shown ("Closing in 45 s"), "" if none
//   expert:    the connected expert's name, "" if none
//   chatLines: how many lines the chat shows
//   notice:    the last notice
//   clipboard: whether the clipboard is shared with the expert
//   app:       whether this is the novice's app (assist with no arguments)
//   busy:      the app runs an invitation or a session
//   contacts:  the contacts listed, as "user:state" strings
//   asking:    the contact the app waits for, "" if none
//   valid:     the invitation's "Valid for …" line as shown
//   link:      the invitation's link shown (and in the QR code)
//   copied:    the last text the page copied to the clipboard
//   files: whether files are allowed; transfers: each transfer's state
//   stillSharing: whether "Still sharing with NAME?" is asked
//   upload:    the last file picked on the page: "" | "uploading" | "sent" | "failed"

const el = (id) => document.querySelector(`[data-testid="${id}"]`);

const status = {
  socket: 'connecting', state: 'connecting', question: 0, countdown: '', expert: '', chatLines: 0, notice: '', clipboard: false,
  app: false, busy: false, contacts: [], asking: '', valid: '', link: '', copied: '', files: false, transfers: [],
  stillSharing: false, upload: '',
};
window.assistNovice = status;

let current = null; // the last status from the server
let socket = null;
let lastSeq = 0;
let retryDelay = 500;
let countdownTimer = 0; // ticks while a question with a deadline is shown
let validTimer = 0; // ticks while an invitation's remaining time is shown
let stillTimer = 0; // ticks while "Still sharing?" is asked

// showCountdown shows how long until an unanswered question counts as a
// no, and keeps it ticking while the question is shown.
function showCountdown(deadline) {
  clearInterval(countdownTimer);
  countdownTimer = 0;
  const d = deadline ? new Date(deadline).getTime() : NaN;
  const box = el('question-countdown');
  if (Number.isNaN(d) || d <= 0) {
    box.hidden = true;
    status.countdown = '';
    return;
  }
  const tick = () => {
    const left = Math.max(0, Math.ceil((d - Date.now()) / 1000));
    const text = left > 0 ? `Closing in ${left} s. No answer means no.` : 'No answer: that means no.';
    box.textContent = text;
    status.countdown = text;
  };
  box.hidden = false;
  tick();
  countdownTimer = setInterval(tick, 1000);
}

function wsURL(path) {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(msg));
    return true;
  }
  showNotice('Not connected to assist: try again in a moment.');
  return false;
}

function showNotice(text) {
  status.notice = text;
  el('notice').textContent = text;
}

function showBanner(text) {
  const b = el('banner');
  b.textContent = text;
  b.hidden = text === '';
}

function setText(id, text) {
  el(id).textContent = text;
}

function setShown(ids, shown) {
  for (const id of ids) el(id).hidden = !shown;
}

function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '';
  return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

// validFor says how long an invitation stays valid, in plain words and
// local time: "Valid for 58 more minutes (until 17:58)."
function validFor(iso, now = Date.now()) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '';
  const until = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const left = d.getTime() - now;
  if (left <= 0) return `This invitation expired at ${until}.`;
  const min = Math.ceil(left / 60000);
  let span;
  if (min < 2) span = 'less than 2 more minutes';
  else if (min < 120) span = `${min} more minutes`;
  else span = `${Math.round(min / 60)} more hours`;
  const day = d.toDateString() === new Date(now).toDateString() ? until
    : d.toLocaleString([], { weekday: 'long', hour: '2-digit', minute: '2-digit' });
  return `Valid for ${span} (until ${day}).`;
}

function showValid(iso) {
  clearInterval(validTimer);
  validTimer = 0;
  const box = el('valid');
  const tick = () => {
    status.valid = validFor(iso);
    box.textContent = status.valid;
  };
  tick();
  box.hidden = status.valid === '';
  if (!box.hidden) validTimer = setInterval(tick, 15000);
}

// presenceLabel says a contact's presence in words.
function presenceLabel(state) {
  switch (state) {
    case 'online': return 'available';
    case 'busy': return 'busy in a session';
    case 'away': return 'away';
    default: return 'not connected';
  }
}

// renderApp shows the app's part: Get help and the contacts while
// nothing runs, "asking …" while a contact's answer is awaited.
function renderApp(s) {
  const a = s.app;
  status.app = true;
  status.busy = !!a.busy;
  status.asking = a.asking || '';
  document.body.classList.add('app');
  const idle = !a.busy && !a.asking;
  el('start').hidden = !idle;
  el('asking-box').hidden = !a.asking;
  setText('asking', a.asking ? `Waiting for ${displayOf(a, a.asking)} to answer…` : '');
  const last = el('last');
  last.textContent = a.last || '';
  last.hidden = !a.last;
  el('get-help').disabled = !idle;
  el('no-account').hidden = !!a.account;
  el('contacts-box').hidden = !a.account;
  setText('contacts-note', !a.account ? '' : a.online
    ? 'Ask someone for help with one click. They get your request on their computer.'
    : `Not connected to ${a.server || 'the server'} right now; trying again. Get help still works.`);
  const list = el('contacts');
  list.replaceChildren();
  status.contacts = [];
  const contacts = a.contacts || [];
  if (a.account && contacts.length === 0) {
    const li = document.createElement('li');
    li.textContent = 'No contacts yet. Someone who helps you can add you (assist contacts invite).';
    list.append(li);
  }
  for (const c of contacts) {
    status.contacts.push(`${c.user}:${c.state}`);
    const li = document.createElement('li');
    li.dataset.user = c.user;
    li.dataset.state = c.state;
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = c.display || c.user;
    const state = document.createElement('span');
    state.className = 'presence';
    state.textContent = presenceLabel(c.state);
    const ask = document.createElement('button');
    ask.type = 'button';
    ask.className = 'allow';
    ask.textContent = 'Ask for help';
    ask.dataset.testid = 'ask';
    ask.setAttribute('aria-label', `Ask ${c.display || c.user} for help`);
    ask.disabled = !idle || !a.online;
    ask.addEventListener('click', () => {
      if (send({ type: 'ask', user: c.user })) ask.disabled = true;
    });
    li.append(dot, name, state, ask);
    list.append(li);
  }
  // The invitation and the session only while one runs; once someone is
  // connected, the session comes first and the invitation shrinks to
  // its code.
  const inv = !!a.busy && !!s.code && !s.stopped && !s.agent;
  el('invitation-box').hidden = !inv;
  const connected = !!s.expert && s.state !== 'waiting';
  document.body.classList.toggle('connected', connected);
  if (connected) el('send-box').hidden = true;
  el('session-box').hidden = !a.busy;
  el('chat-box').hidden = !a.busy || !s.expert;
}

function displayOf(a, user) {
  const c = (a.contacts || []).find((x) => x.user === user);
  return c && c.display ? c.display : user;
}

// stateLabel says where things stand, in words for the novice.
function stateLabel(s) {
  const who = s.expert || 'Your helper';
  if (s.app && !s.app.busy) return s.app.asking ? 'Asking for help' : 'Ready';
  if (s.stopped) return 'Invitation over';
  switch (s.state) {
    case 'waiting': return s.agent ? 'Ready' : 'Waiting for your helper';
    case 'asking': return 'Question for you';
    case 'viewing': return `${who} sees your screen`;
    case 'control-asked': return `${who} asks for control`;
    case 'controlling': return `${who} controls your mouse and keyboard`;
    case 'ended': return 'Session ended';
    default: return s.state;
  }
}

// renderHistory shows the agent's history: text only (the names in it
// come from other people).
function renderHistory(lines) {
  el('history-box').hidden = lines.length === 0;
  const ul = el('history');
  if (ul.dataset.lines === JSON.stringify(lines)) return;
  ul.dataset.lines = JSON.stringify(lines);
  ul.replaceChildren(...lines.map((l) => {
    const li = document.createElement('li');
    li.textContent = l;
    return li;
  }));
}

function render(s) {
  const state = s.stopped ? 'stopped' : s.state;
  // In the app a notice answers the click of a moment ago: once things
  // move on (a question, a session, back to Get help) it is stale.
  if (s.app && current && (current.state !== s.state || !!(current.app && current.app.busy) !== !!s.app.busy)) showNotice('');
  current = s;
  status.state = state;
  status.expert = s.expert || '';
  const pill = el('state');
  pill.dataset.state = state;
  pill.textContent = stateLabel(s);

  setText('code', s.code || '…');
  // The agent's page has no invitation: it asks offers of help.
  if (!s.app) el('invitation-box').hidden = !!s.agent;
  el('withdraw').hidden = !!s.agent;
  renderHistory(s.history || []);
  el('code-buttons').hidden = !s.code;
  status.link = s.link || '';
  el('send-box').hidden = !s.link;
  setText('link', s.link || '');
  if (s.qr && el('qr').getAttribute('src') !== s.qr) el('qr').src = s.qr;
  el('save-file').hidden = !s.file;
  el('email-form').hidden = !s.app;
  if (s.code && !s.stopped) showValid(s.expires);
  else showValid('');
  setText('password', s.password || '');
  setShown(['password-row'], !!s.password);
  setText('expires', formatTime(s.expires));
  setText('server', s.server || '');
  setShown(['server', 'server-label'], !!s.server);
  setText('addresses', (s.addresses || []).join(' '));
  setShown(['addresses', 'addresses-label'], !!(s.addresses && s.addresses.length));
  setText('detail', s.detail || '');
  setShown(['detail', 'detail-label'], !!s.detail);

  let who = 'Nobody is connected yet.';
  if (s.expert) {
    who = s.path ? `${s.expert} is connected (${s.path}).` : `${s.expert} is connected.`;
    if (s.state === 'ended') who = `${s.expert} was connected.`;
  }
  // During a session the state says it all; the reason matters when it
  // is over (who ended it, and why).
  if (s.reason && (s.state === 'waiting' || s.state === 'ended' || s.stopped)) {
    who += ` ${s.reason.charAt(0).toUpperCase()}${s.reason.slice(1)}.`;
  }
  setText('who', who);

  // A question never takes the focus: a stray Enter or Space meant for
  // another window must not answer it.
  const q = s.stopped ? null : s.question;
  status.question = q ? q.id : 0;
  el('question').hidden = !q;
  if (q) {
    const name = s.expert || 'Your helper';
    const offer = q.right === 'offer';
    el('allow').textContent = offer ? 'Accept' : 'Allow';
    el('deny').textContent = offer ? 'Decline' : 'Deny';
    if (offer) {
      // The agent's words, from the helper's organisation: text only.
      setText('question-text', q.text || '');
      setText('question-hint', 'Nobody sees your screen until you accept, and you are asked again before they do.');
    } else if (q.right === 'control') {
      setText('question-text', `${name} asks to control your mouse and keyboard.`);
      setText('question-hint', 'You can take control back at any time: press Esc, or click Take back control.');
    } else if (q.right === 'files') {
      setText('question-text', `${name} asks to exchange files with you.`);
      setText('question-hint', 'Files they send are saved in your Downloads folder; you choose what you send them. Click Stop files at any time.');
    } else if (q.right === 'clipboard') {
      setText('question-text', `${name} asks to share clipboards (copy and paste between your computers).`);
      setText('question-hint', 'What you copy is then sent to them, and what they copy can be pasted here. Click Stop sharing clipboard at any time.');
    } else {
      setText('question-text', `${name} wants to see your screen.`);
      setText('question-hint', 'They will see everything on your screen until the session ends.');
    }
    setText('question-via', q.via ? `Connected ${q.via}.` : '');
    el('question-via').hidden = !q.via;
    setText('question-warning', q.warning || '');
    el('question-warning').hidden = !q.warning;
    if (Number(el('allow').dataset.question) !== q.id) showCountdown(q.deadline);
    for (const id of ['allow', 'deny']) {
      el(id).dataset.question = String(q.id);
      el(id).disabled = false;
    }
    document.title = 'Question: ' + el('question-text').textContent + ' — Assist';
  } else {
    document.title = `${stateLabel(s)} — Assist`;
    showCountdown(null);
    el('allow').dataset.question = '';
  }

  const inSession = !!s.expert && s.state !== 'waiting' && s.state !== 'ended' && !s.stopped;
  el('take-back').disabled = !(inSession && s.state === 'controlling');
  el('end').disabled = !inSession;
  el('withdraw').disabled = !!s.stopped;
  status.clipboard = !!s.clipboard && inSession;
  const clip = el('clipboard');
  clip.disabled = !inSession;
  clip.setAttribute('aria-pressed', String(status.clipboard));
  clip.textContent = status.clipboard ? 'Stop sharing clipboard' : 'Share clipboard';
  setText('clipboard-state', status.clipboard
    ? `Clipboard: shared with ${s.expert || 'your helper'}. What you copy is sent to them; what they copy can be pasted here.`
    : 'Clipboard: not shared.');
  status.files = !!s.files && inSession;
  const files = el('files');
  files.disabled = !inSession;
  files.setAttribute('aria-pressed', String(status.files));
  files.textContent = status.files ? 'Stop files' : 'Allow files';
  setText('files-state', status.files
    ? `Files: allowed. ${s.expert || 'Your helper'} can send you files (they go to your Downloads folder), and you can send them files here.`
    : 'Files: not allowed.');
  el('send-file-box').hidden = !status.files;
  setText('send-file-label', `Send a file to ${s.expert || 'your helper'}:`);
  const placeholder = `Message to ${s.expert || 'your helper'}`;
  el('chat-input').placeholder = placeholder;
  el('chat-input').setAttribute('aria-label', placeholder);
  showStillSharing(inSession ? s.still_sharing : null, s.expert);
  showTransfers(s.transfers || []);
  const canChat = inSession && (s.state === 'viewing' || s.state === 'control-asked' || s.state === 'controlling' || s.state === 'asking');
  el('chat-input').disabled = !canChat;
  el('chat-send').disabled = !canChat;
  if (s.app) {
    renderApp(s);
  } else if (s.stopped) {
    showBanner(`This invitation is over${s.reason ? ': ' + s.reason.replace(/\.$/, '') : ''}. You can close this page.`);
  } else if (s.agent) {
    showBanner(''); // the agent's page lives on from offer to offer
  }
}

// showStillSharing asks "Still sharing with NAME?" until deadline, when
// the session ends unless someone answers (here, on the screen's bar or
// in the terminal).
function showStillSharing(deadline, expert) {
  const d = deadline ? new Date(deadline).getTime() : NaN;
  const box = el('still-sharing');
  const asked = !Number.isNaN(d) && d > 0;
  status.stillSharing = asked;
  if (!asked) {
    clearInterval(stillTimer);
    stillTimer = 0;
    box.hidden = true;
    return;
  }
  setText('still-text', `Still sharing your screen with ${expert || 'your helper'}?`);
  for (const id of ['keep-sharing', 'stop-sharing']) el(id).disabled = false;
  const tick = () => {
    const left = Math.max(0, Math.ceil((d - Date.now()) / 1000));
    setText('still-countdown', left > 0 ? `If nobody answers, sharing stops in ${left} s.` : 'Nobody answered: sharing stops.');
  };
  tick();
  if (box.hidden) {
    clearInterval(stillTimer);
    stillTimer = setInterval(tick, 1000);
  }
  box.hidden = false;
}

function addLines(msg) {
  const log = el('chat-log');
  if (msg.reset) {
    log.replaceChildren();
    lastSeq = 0;
  }
  for (const line of msg.lines) {
    if (line.seq <= lastSeq) continue;
    lastSeq = line.seq;
    const li = document.createElement('li');
    if (line.mine) li.className = 'mine';
    const time = document.createElement('span');
    time.className = 'time';
    const d = new Date(line.time);
    time.textContent = Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = line.mine ? 'You:' : `${line.from}:`;
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = line.text;
    li.append(time, from, text);
    log.append(li);
  }
  status.chatLines = log.children.length;
  log.scrollTop = log.scrollHeight;
}

function connect() {
  status.socket = 'connecting';
  const ws = new WebSocket(wsURL('events'));
  socket = ws;
  ws.addEventListener('open', () => {
    status.socket = 'open';
    retryDelay = 500;
    showBanner('');
  });
  ws.addEventListener('message', (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'status': render(msg.status); break;
      case 'chat': addLines(msg); break;
      case 'notice': showNotice(msg.text); break;
    }
  });
  ws.addEventListener('close', (ev) => {
    status.socket = 'closed';
    socket = null;
    if (current && current.stopped) {
      return; // the banner says it is over
    }
    if (ev.code === 1001) {
      el('state').dataset.state = 'offline';
      el('state').textContent = 'assist stopped';
      showBanner(status.app ? 'Assist has stopped. You can close this page.' : 'assist invite has stopped. You can close this page.');
      return;
    }
    el('state').dataset.state = 'offline';
    el('state').textContent = 'Not connected';
    showBanner('Lost the connection to assist invite; trying again…');
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 8000);
  });
}

function answer(allow) {
  const id = Number(el('allow').dataset.question);
  if (!id) return;
  if (send({ type: 'answer', question: id, allow })) {
    // The next status hides the question; meanwhile no second click.
    el('allow').disabled = true;
    el('deny').disabled = true;
    showNotice('');
  }
}

el('allow').addEventListener('click', () => answer(true));
el('deny').addEventListener('click', () => answer(false));
el('take-back').addEventListener('click', () => send({ type: 'take_back' }));
el('end').addEventListener('click', () => send({ type: 'end' }));
el('withdraw').addEventListener('click', () => send({ type: 'withdraw' }));
el('clipboard').addEventListener('click', () => send({ type: 'clipboard', allow: !status.clipboard }));
el('get-help').addEventListener('click', () => {
  if (send({ type: 'get_help' })) el('get-help').disabled = true;
});
el('stop-asking').addEventListener('click', () => send({ type: 'withdraw' }));
el('email-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const to = el('email-to').value.trim();
  if (send({ type: 'email', to })) showNotice(to ? `Sending the invitation to ${to}…` : 'Opening your mail program…');
});

// copy puts text on the clipboard and says so next to the button.
async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    status.copied = text;
    showNotice(`${what} is copied: paste it into an e-mail or a chat.`);
  } catch {
    showNotice(`Could not copy the ${what.toLowerCase()}: select it and copy it by hand.`);
  }
}
el('copy-code').addEventListener('click', () => copy(el('code').textContent, 'The code'));
el('copy-link').addEventListener('click', () => copy(el('link').textContent, 'The link'));
el('files').addEventListener('click', () => send({ type: 'files', allow: !status.files }));
el('keep-sharing').addEventListener('click', () => {
  if (send({ type: 'keep_sharing' })) el('keep-sharing').disabled = true;
});
el('stop-sharing').addEventListener('click', () => {
  if (send({ type: 'end' })) el('stop-sharing').disabled = true;
});

// uploads are the files picked or dropped, sent one after the other:
// each goes to assist over the page's own origin, which hands it on.
const uploads = [];
let uploading = false;

function sendFiles(files) {
  if (!status.files) {
    showNotice('To send a file, click Allow files first.');
    return;
  }
  uploads.push(...files);
  if (!uploading) nextUpload();
}

function nextUpload() {
  const file = uploads.shift();
  const bar = el('upload-progress');
  if (!file) {
    uploading = false;
    bar.hidden = true;
    el('send-file-input').value = '';
    return;
  }
  uploading = true;
  status.upload = 'uploading';
  bar.value = 0;
  bar.hidden = false;
  showNotice(`Getting ${file.name} ready…`);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', 'upload');
  xhr.setRequestHeader('X-Assist-Name', encodeURIComponent(file.name));
  xhr.upload.addEventListener('progress', (ev) => {
    if (ev.lengthComputable && ev.total > 0) bar.value = Math.floor((ev.loaded * 100) / ev.total);
  });
  xhr.addEventListener('load', () => {
    if (xhr.status === 204) {
      status.upload = 'sent';
      showNotice(`Sending ${file.name}: the list below shows how far it is.`);
    } else {
      status.upload = 'failed';
      showNotice(xhr.responseText.trim() || `${file.name} was not sent.`);
    }
    nextUpload();
  });
  xhr.addEventListener('error', () => {
    status.upload = 'failed';
    showNotice(`${file.name} was not sent: the connection to assist broke.`);
    nextUpload();
  });
  xhr.send(file);
}

el('send-file-input').addEventListener('change', (ev) => sendFiles([...ev.target.files]));
// A file dropped anywhere is sent, never opened in place of the page.
document.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  el('send-file-box').classList.add('over');
});
document.addEventListener('dragleave', () => el('send-file-box').classList.remove('over'));
document.addEventListener('drop', (ev) => {
  ev.preventDefault();
  el('send-file-box').classList.remove('over');
  if (ev.dataTransfer && ev.dataTransfer.files.length > 0) sendFiles([...ev.dataTransfer.files]);
});

// showTransfers lists the session's file transfers, each with a progress
// bar while it runs; names come from the other side: textContent only.
function showTransfers(list) {
  const ul = el('transfers');
  status.transfers = list.map((t) => t.state);
  ul.replaceChildren(...list.slice().reverse().map((t) => {
    const li = document.createElement('li');
    li.dataset.state = t.state;
    const mb = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`);
    const name = document.createElement('strong');
    name.textContent = `${t.name} (${mb(t.size)}) ${t.incoming ? 'from' : 'to'} ${status.expert || 'your helper'}`;
    const line = document.createElement('span');
    const pct = t.size > 0 ? Math.floor((t.done * 100) / t.size) : 100;
    switch (t.state) {
      case 'transferring': line.textContent = `${pct}%`; break;
      case 'completed': line.textContent = t.incoming ? `Saved: ${t.path}` : 'Sent.'; break;
      case 'offered': line.textContent = t.incoming ? 'Arriving…' : `Waiting for ${status.expert || 'your helper'} to accept it…`; break;
      case 'interrupted': line.textContent = 'Interrupted: sending it again continues where it stopped.'; break;
      default: line.textContent = `Not sent${t.reason ? ': ' + t.reason : ''}.`;
    }
    li.append(name, line);
    if (t.state === 'transferring') {
      const bar = document.createElement('progress');
      bar.max = 100;
      bar.value = pct;
      li.append(bar);
    }
    return li;
  }));
}
el('chat-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = el('chat-input');
  const text = input.value.trim();
  if (text === '') return;
  if (send({ type: 'chat', text })) input.value = '';
});

connect();
