// The expert's session view, one for both entry points: `assist join`'s
// page on loopback (web/viewer) and the server's web app (web/expert).
// It builds the session's part of the page (heading, state line, path,
// the buttons, the desktop, the clipboard and files panels, the chat)
// into a root element, keeps it in step with set(), and reports the
// expert's clicks through the callbacks given to it. How the session is
// reached (a WebSocket to assist join, or WebRTC and assist.wasm) stays
// with the caller.
//
// Everything the other side sends (chat, clipboard, reasons, names) is
// shown with textContent, never parsed as HTML.
//
// Tests find things by data-testid: title, novice-name, state (with
// data-state), path (with data-path: direct, punched, relay-udp...),
// reduced (shown while pictures come at reduced resolution), request-control, give-back-control,
// request-clipboard, keys, keys-menu, key-ID (words.specialKeys), scale
// (data-scale "fit" or "1:1"), fullscreen, leave, screen,
// clipboard-panel, files-panel, chat-log, chat-form, chat-input,
// chat-send.
import { title, stateLine, pathLine, reducedLine, reducedTitle, reasonText, possessive, specialKeys } from './words.js';
import { setScale, sendSpecial, pasteToNovice } from './screen.js';

// h makes an element: h('button', {type: 'button', testid: 'leave'}, 'Leave').
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'testid') e.dataset.testid = v;
    else if (k === 'class') e.className = v;
    else if (k === 'hidden') e.hidden = true;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children);
  return e;
}

const scaleKey = 'assist.scale';

// reducedHold is how long the reduced-picture line stays after the last
// such picture: refinement makes a still area exact within about a
// second (rfb/refine.go).
const reducedHold = 2000;

export class SessionView {
  // name: the person helped, or '' if unknown. on: callbacks
  // {requestControl, giveBackControl, requestClipboard, leave, close,
  // chat(text)}; a missing giveBackControl hides that button; close, if
  // given, is what Leave becomes once the session is over ("Close": back
  // to the caller's home screen). chat returns false if the line was not
  // sent (the text then stays in the box).
  constructor(root, name, on) {
    this.name = name || '';
    this.on = on;
    this.rfb = null;
    this.model = { state: 'connecting', live: false, clipboard: false, path: '', progress: '', reduced: false, askingControl: false, askingClipboard: false, reason: '' };
    this.reducedTimer = 0;
    this.scale = 'fit';
    try {
      if (localStorage.getItem(scaleKey) === '1:1') this.scale = '1:1';
    } catch {
      // No storage: fit, the default.
    }
    this.build(root);
    this.render();
  }

  build(root) {
    const n = this.name;
    this.els = {};
    const b = (id, label, attrs = {}) => (this.els[id] = h('button', { type: 'button', testid: id, ...attrs }, label));
    const nameSpan = h('span', { testid: 'novice-name' }, n || 'someone');
    const heading = h('h2', { testid: 'title', class: 'sv-title' }, 'Helping ', nameSpan);
    this.els.title = heading;
    this.els.state = h('p', { testid: 'state', class: 'sv-state', role: 'status', 'aria-live': 'polite' });
    // The detail line: how the connection goes and, while the picture
    // comes reduced, that it does, so that a blurred video is not taken
    // for a fault. One line, so that the desktop does not move when
    // the second part comes and goes.
    this.els.path = h('span', { testid: 'path', class: 'sv-path', title: 'How the connection goes: direct, punched (through NAT) or through a relay', hidden: true });
    this.els.reduced = h('span', { testid: 'reduced', class: 'sv-reduced', role: 'status', title: reducedTitle, hidden: true }, reducedLine);
    this.els.detail = h('p', { class: 'sv-detail', hidden: true }, this.els.path, this.els.reduced);

    // The special keys: a menu button and its items, keyboard-usable
    // (arrows move, Esc closes, Enter sends).
    const items = specialKeys.map((k) => h('li', { role: 'none' }, b(`key-${k.id}`, k.label, { role: 'menuitem', tabindex: '-1' })));
    this.els.keysMenu = h('ul', { class: 'sv-menu', role: 'menu', testid: 'keys-menu', 'aria-label': 'Special keys', hidden: true }, ...items);
    const keys = b('keys', 'Keys ▾', { 'aria-haspopup': 'menu', 'aria-expanded': 'false', title: 'Send keys your own computer keeps for itself: Ctrl+Alt+Del, Super, Alt+Tab…' });
    const keysBox = h('div', { class: 'sv-menu-box' }, keys, this.els.keysMenu);

    const actions = this.els.actions = h('div', { class: 'sv-actions', testid: 'session-actions' },
      b('request-control', 'Request control', { title: `Ask ${n || 'them'} to let you use the mouse and keyboard` }),
      b('give-back-control', 'Give back control', { hidden: true }),
      b('request-clipboard', 'Share clipboard', { title: 'Ask to copy and paste between your computers' }),
      keysBox,
      b('scale', '', {}),
      b('fullscreen', 'Full screen', { title: 'Full screen (Esc leaves it)' }),
      b('leave', 'Leave', { class: 'sv-leave' }));
    const bar = h('div', { class: 'sv-bar' }, h('div', { class: 'sv-who' }, heading, this.els.state, this.els.detail), actions);

    this.els.screen = h('div', { class: 'screen', id: 'screen', testid: 'screen' });

    const whose = possessive(n);
    this.els.clipboardReceived = h('textarea', { testid: 'clipboard-received', rows: '3', readonly: true });
    this.els.clipboardText = h('textarea', { testid: 'clipboard-text', rows: '3' });
    this.els.clipboardForm = h('form', { testid: 'clipboard-form', autocomplete: 'off' },
      h('label', {}, `Text for ${whose} clipboard`, this.els.clipboardText),
      h('button', { type: 'submit', testid: 'clipboard-send' }, `Send to ${whose} clipboard`));
    this.els.clipboardPanel = h('section', { class: 'sv-panel clipboard', testid: 'clipboard-panel', 'aria-label': 'Shared clipboard', hidden: true },
      h('h3', {}, 'Clipboard'),
      h('label', {}, `Copied on ${whose} computer`, this.els.clipboardReceived),
      this.els.clipboardForm);
    // Files sent and received: a panel like the clipboard's, filled in
    // by the file transfer's own module (filesPanel below).
    this.els.filesPanel = h('section', { class: 'sv-panel files', testid: 'files-panel', 'aria-label': 'Files', hidden: true });

    this.els.chatLog = h('ol', { class: 'log', testid: 'chat-log', 'aria-live': 'polite' });
    this.els.chatInput = h('input', { type: 'text', testid: 'chat-input', maxlength: '1000', placeholder: `Message to ${n || 'them'}`, 'aria-label': 'Message', disabled: true });
    this.els.chatSend = h('button', { type: 'submit', testid: 'chat-send', disabled: true }, 'Send');
    this.els.chatForm = h('form', { class: 'compose', testid: 'chat-form', autocomplete: 'off' }, this.els.chatInput, this.els.chatSend);
    const side = h('aside', { class: 'sv-side', 'aria-label': 'Chat and shared things' },
      this.els.clipboardPanel, this.els.filesPanel, h('h3', { class: 'sv-chat-title' }, 'Chat'), this.els.chatLog, this.els.chatForm);

    this.root = h('div', { class: 'session-view', testid: 'session-view' }, bar, h('div', { class: 'sv-main' }, this.els.screen, side));
    root.replaceChildren(this.root);
    this.wire(keys);
  }

  wire(keys) {
    const e = this.els;
    e['request-control'].addEventListener('click', () => {
      this.set({ askingControl: true });
      this.on.requestControl();
    });
    e['give-back-control'].addEventListener('click', () => this.on.giveBackControl && this.on.giveBackControl());
    e['request-clipboard'].addEventListener('click', () => {
      this.set({ askingClipboard: true });
      this.on.requestClipboard();
    });
    e.leave.addEventListener('click', () => {
      if (this.over()) {
        if (this.on.close) this.on.close();
      } else {
        this.on.leave();
      }
    });
    e.scale.addEventListener('click', () => this.setScale(this.scale === 'fit' ? '1:1' : 'fit'));
    e.fullscreen.addEventListener('click', () => this.toggleFullscreen());
    document.addEventListener('fullscreenchange', () => {
      if (this.root.isConnected) this.render();
    });
    e.clipboardForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = e.clipboardText.value;
      if (text === '' || !this.rfb || !this.model.clipboard) return;
      pasteToNovice(this.rfb, text);
      e.clipboardText.value = '';
    });
    e.chatForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = e.chatInput.value.trim();
      if (text === '' || !this.model.live) return;
      if (this.on.chat(text) !== false) e.chatInput.value = '';
      e.chatInput.focus();
    });
    // The keys menu.
    const menu = e.keysMenu;
    const itemsOf = () => [...menu.querySelectorAll('[role="menuitem"]')];
    const close = (refocus) => {
      menu.hidden = true;
      keys.setAttribute('aria-expanded', 'false');
      if (refocus) keys.focus();
    };
    keys.addEventListener('click', () => {
      if (!menu.hidden) return close(false);
      menu.hidden = false;
      keys.setAttribute('aria-expanded', 'true');
      itemsOf()[0].focus();
    });
    keys.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown') {
        ev.preventDefault();
        keys.click();
      }
    });
    menu.addEventListener('keydown', (ev) => {
      const items = itemsOf();
      const i = items.indexOf(document.activeElement);
      if (ev.key === 'Escape') {
        ev.preventDefault();
        close(true);
      } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        const d = ev.key === 'ArrowDown' ? 1 : -1;
        items[(i + d + items.length) % items.length].focus();
      } else if (ev.key === 'Home' || ev.key === 'End') {
        ev.preventDefault();
        items[ev.key === 'Home' ? 0 : items.length - 1].focus();
      }
    });
    menu.addEventListener('focusout', (ev) => {
      if (!menu.contains(ev.relatedTarget) && ev.relatedTarget !== keys) close(false);
    });
    for (const k of specialKeys) {
      e[`key-${k.id}`].addEventListener('click', () => {
        close(false);
        this.sendKey(k.id);
      });
    }
  }

  // sendKey sends a special key and gives the desktop the focus back.
  sendKey(id) {
    if (!this.rfb || this.model.state !== 'controlling') return false;
    sendSpecial(this.rfb, id);
    this.rfb.focus();
    return true;
  }

  setScale(scale) {
    this.scale = scale;
    try {
      localStorage.setItem(scaleKey, scale);
    } catch {
      // Not remembered; still applied.
    }
    if (this.rfb) setScale(this.rfb, scale);
    this.render();
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (this.root.requestFullscreen) {
      this.root.requestFullscreen().catch((err) => this.addNote(`Full screen is not available: ${err.message}`));
    }
  }

  // attach gives the view the desktop's noVNC object (or null when the
  // picture is gone).
  attach(rfb) {
    this.rfb = rfb;
    if (rfb) setScale(rfb, this.scale);
    if (rfb?.assistScaled) rfb.assistScaled.onDrawn = () => this.reducedDrawn();
    clearTimeout(this.reducedTimer);
    this.model.reduced = false;
    this.render();
  }

  // reducedDrawn: a picture at reduced resolution was drawn. The line
  // stays until none has come for reducedHold.
  reducedDrawn() {
    clearTimeout(this.reducedTimer);
    this.reducedTimer = setTimeout(() => this.set({ reduced: false }), reducedHold);
    if (!this.model.reduced) this.set({ reduced: true });
  }

  // set changes the session's model and shows it: state, live (the
  // session runs and accepts requests), clipboard (shared), path,
  // progress (what connecting is doing),
  // askingControl/askingClipboard (a request was sent, no answer yet).
  set(changes) {
    const was = this.model.state;
    Object.assign(this.model, changes);
    if ('state' in changes && changes.state !== was) {
      // Every state change answers the requests in flight.
      if (!('askingControl' in changes)) this.model.askingControl = false;
      if (!('askingClipboard' in changes)) this.model.askingClipboard = false;
    }
    this.render();
  }

  // over: the session has ended (or was lost).
  over() {
    return this.model.state === 'ended' || this.model.state === 'lost';
  }

  // stateText is the state line, with the reason the session ended.
  stateText() {
    const line = stateLine(this.model.state, this.name);
    const s = this.model.state;
    const why = (s === 'ended' || s === 'lost') ? reasonText(this.model.reason, this.name) : '';
    return why ? `${line}. ${why}` : line;
  }

  render() {
    const m = this.model;
    const e = this.els;
    const s = m.state;
    e.state.textContent = this.stateText();
    e.state.dataset.state = s;
    // The detail line: how the connection goes, or, before there is one,
    // what connecting is doing ("you are next in line…").
    const detail = pathLine(m.path) || (s === 'connecting' ? m.progress : '');
    e.path.hidden = !detail;
    e.path.textContent = detail;
    e.path.dataset.path = m.path;
    e.reduced.hidden = !m.reduced || this.over();
    e.detail.hidden = e.path.hidden && e.reduced.hidden;
    const sees = s === 'viewing' || s === 'control-asked' || s === 'controlling';
    const controlling = s === 'controlling';
    e['request-control'].hidden = controlling && !!this.on.giveBackControl;
    e['request-control'].disabled = !m.live || s !== 'viewing' || m.askingControl;
    e['give-back-control'].hidden = !(controlling && this.on.giveBackControl);
    e['give-back-control'].disabled = !m.live;
    e['request-clipboard'].hidden = m.clipboard;
    e['request-clipboard'].disabled = !m.live || !sees || m.clipboard || m.askingClipboard;
    e.keys.disabled = !m.live || !controlling || !this.rfb;
    if (e.keys.disabled) {
      e.keysMenu.hidden = true;
      e.keys.setAttribute('aria-expanded', 'false');
    }
    e.scale.dataset.scale = this.scale;
    // The button names what a click does.
    e.scale.textContent = this.scale === 'fit' ? 'Actual size (1:1)' : 'Fit to window';
    e.scale.title = this.scale === 'fit' ? 'Show every pixel as it is, with scroll bars' : 'Shrink the screen to fit this window';
    e.scale.setAttribute('aria-pressed', String(this.scale === '1:1'));
    // What the empty screen area says (CSS shows it while noVNC has put
    // nothing there).
    const them = this.name || 'they';
    const hints = {
      connecting: 'Connecting…',
      asking: `${this.name ? this.name + "'s" : 'Their'} screen appears here once ${them} allow${this.name ? 's' : ''} it.`,
      ended: 'The session has ended.',
      lost: 'The connection was lost.',
    };
    e.screen.dataset.empty = hints[s] || '';
    const full = !!document.fullscreenElement;
    e.fullscreen.textContent = full ? 'Exit full screen' : 'Full screen';
    e.fullscreen.setAttribute('aria-pressed', String(full));
    if (this.over()) {
      e.leave.textContent = 'Close';
      e.leave.title = 'Back to the start page';
      e.leave.hidden = !this.on.close;
      e.leave.disabled = false;
    } else {
      e.leave.textContent = 'Leave';
      e.leave.title = 'End the session';
      e.leave.hidden = false;
      e.leave.disabled = !(m.live || s === 'connecting' || s === 'asking');
    }
    e.clipboardPanel.hidden = !(m.live && m.clipboard);
    e.chatInput.disabled = !m.live;
    e.chatSend.disabled = !m.live;
    if (this.rfb) {
      // The novice's consent gate drops input anyway unless control was
      // granted; this only avoids sending it.
      this.rfb.viewOnly = !controlling;
    }
  }

  // clipboardReceived shows what the novice copied.
  clipboardReceived(text) {
    this.els.clipboardReceived.value = text;
  }

  // filesPanel is where the file transfer puts its part (a list of
  // transfers with their progress, a drop zone): an empty section in the
  // side bar, between the clipboard and the chat, hidden until the caller
  // sets filesPanel.hidden = false. A "Send a file" button belongs in
  // actions, before Keys: actions.insertBefore(button, keysButton).
  get filesPanel() {
    return this.els.filesPanel;
  }

  // actions is the bar's row of buttons; keysButton is the special keys'
  // menu button in it.
  get actions() {
    return this.els.actions;
  }

  get keysButton() {
    return this.els.keys.parentElement;
  }

  clearChat() {
    this.els.chatLog.replaceChildren();
  }

  get chatLines() {
    return this.els.chatLog.children.length;
  }

  // addChat shows a chat line; from '' is the expert's own.
  addChat(from, text, time, error = false) {
    const t = time ? new Date(time) : new Date();
    const li = h('li', { class: error ? 'error' : undefined },
      h('span', { class: 'time' }, t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
      h('span', { class: 'from' }, error ? '' : `${from || 'You'}:`),
      h('span', {}, String(text ?? '')));
    this.append(li);
  }

  // addReason notes why the state changed, in the expert's words (see
  // words.reasonText); reasons the state line already tells are left out.
  addReason(reason) {
    const text = reasonText(reason, this.name);
    if (text) this.addNote(text);
  }

  addNote(text) {
    this.append(h('li', { class: 'note' }, String(text)));
  }

  append(li) {
    const log = this.els.chatLog;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    log.append(li);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  focusScreen() {
    if (this.rfb) this.rfb.focus();
  }
}

export { title, stateLine };
