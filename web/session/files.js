// The files panel of the expert's session view (view.js's filesPanel):
// Ask to exchange files, Send a file (with a progress bar), and for each
// file the other side offers, Accept or Refuse, then its progress and
// where it was saved. The caller moves the bytes: on(...) callbacks
// {requestFiles, sendFile(File), answer(id, accept), cancel(id)}.
//
// Names come from the other side: shown with textContent only.
//
// Tests find: files-request, files-input, files-send, files-list, and per
// transfer file-ID (data-state), file-accept-ID, file-refuse-ID,
// file-cancel-ID, file-bar-ID (a <progress>), file-save-ID (the web
// app's download link of a file that arrived).

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'testid') e.dataset.testid = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children);
  return e;
}

export function size(n) {
  if (n < 1000) return `${n} bytes`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export class FilesPanel {
  // panel: view.filesPanel; name: the person helped; on: the callbacks.
  constructor(panel, name, on) {
    this.panel = panel;
    this.name = name || 'They';
    this.on = on;
    this.rows = new Map();
    this.allowed = false;
    this.asked = false;
    this.request = h('button', { type: 'button', testid: 'files-request' }, 'Ask to exchange files');
    this.input = h('input', { type: 'file', testid: 'files-input', 'aria-label': 'File to send' });
    this.send = h('button', { type: 'button', testid: 'files-send', disabled: true }, 'Send');
    this.note = h('p', { class: 'sv-files-note', testid: 'files-note' });
    this.list = h('ul', { class: 'sv-files', testid: 'files-list' });
    this.form = h('div', { class: 'sv-files-send' }, this.input, this.send);
    panel.replaceChildren(h('h3', {}, 'Files'), this.note, this.request, this.form, this.list);
    panel.hidden = false;
    this.request.addEventListener('click', () => {
      this.asked = true;
      this.on.requestFiles();
      this.render();
    });
    this.input.addEventListener('change', () => this.render());
    this.send.addEventListener('click', () => {
      const f = this.input.files && this.input.files[0];
      if (!f) return;
      this.on.sendFile(f);
      this.input.value = '';
      this.render();
    });
    this.render();
  }

  // setAllowed follows the other side's files right; reason, the raw
  // reason of the state change when the page has it, tells that a
  // question was answered no (or not at all), so asking works again.
  setAllowed(allowed, reason) {
    if (allowed !== this.allowed) this.asked = false;
    if (reason === 'novice refused file transfers' || String(reason || '').startsWith('no answer within')) this.asked = false;
    this.allowed = allowed;
    this.render();
  }

  render() {
    this.request.hidden = this.allowed;
    this.request.disabled = this.asked;
    this.form.hidden = !this.allowed;
    this.send.disabled = !(this.input.files && this.input.files.length);
    this.note.textContent = this.allowed
      ? `${this.name} allowed files: send one, or accept the ones ${this.name} sends.`
      : this.asked ? `Waiting for ${this.name} to allow files…` : 'Files are not allowed yet.';
  }

  // event shows one transfer's news: {id, name, size, done, state,
  // incoming, asking, reason, path, url}; url (a blob: URL) is where the
  // web app keeps a file that arrived, offered as a download link.
  event(f) {
    if (!f || typeof f.id !== 'string') return;
    let row = this.rows.get(f.id);
    if (!row) {
      row = {
        li: h('li', { testid: `file-${f.id}` }),
        title: h('span', { class: 'name' }),
        line: h('span', { class: 'line' }),
        bar: h('progress', { testid: `file-bar-${f.id}`, max: '100', value: '0' }),
        buttons: h('span', { class: 'buttons' }),
      };
      row.li.append(row.title, row.bar, row.line, row.buttons);
      this.rows.set(f.id, row);
      this.list.prepend(row.li);
    }
    row.li.dataset.state = f.state;
    const dir = f.incoming ? `from ${this.name}` : `to ${this.name}`;
    row.title.textContent = `${f.name} (${size(f.size)}) ${dir}`;
    const pct = f.size > 0 ? Math.floor((f.done * 100) / f.size) : (f.state === 'completed' ? 100 : 0);
    row.bar.value = pct;
    row.bar.hidden = f.state !== 'transferring';
    row.buttons.replaceChildren();
    const button = (what, label, fn) => {
      const b = h('button', { type: 'button', testid: `file-${what}-${f.id}` }, label);
      b.addEventListener('click', () => {
        row.buttons.replaceChildren();
        fn();
      });
      row.buttons.append(b);
    };
    switch (f.state) {
      case 'offered':
        if (f.asking) {
          row.line.textContent = `${this.name} wants to send you this file.`;
          button('accept', 'Accept', () => this.on.answer(f.id, true));
          button('refuse', 'Refuse', () => this.on.answer(f.id, false));
        } else {
          row.line.textContent = f.incoming ? 'Arriving…' : `Waiting for ${this.name} to take it…`;
        }
        break;
      case 'transferring':
        row.line.textContent = `${pct}% (${size(f.done)} of ${size(f.size)})`;
        button('cancel', 'Cancel', () => this.on.cancel(f.id));
        break;
      case 'completed':
        if (f.incoming && typeof f.url === 'string' && f.url.startsWith('blob:')) {
          // The server's web app holds the file in the page: a link saves it.
          row.line.textContent = 'Arrived: ';
          const a = h('a', { href: f.url, download: f.name, testid: `file-save-${f.id}` }, `Save ${f.name}`);
          row.line.append(a);
          break;
        }
        row.line.textContent = f.incoming ? `Saved: ${f.path || f.name}` : `${this.name} has it.`;
        break;
      case 'refused':
        row.line.textContent = `Refused${f.reason ? ': ' + f.reason : ''}.`;
        break;
      case 'interrupted':
        row.line.textContent = `Interrupted${f.reason ? ': ' + f.reason : ''}. Sending it again resumes it.`;
        break;
      default:
        row.line.textContent = `${f.state === 'cancelled' ? 'Cancelled' : 'Failed'}${f.reason ? ': ' + f.reason : ''}.`;
    }
  }
}
