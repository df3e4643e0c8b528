// The words of the expert's session page, one table for both entry points
// (`assist join`'s page on loopback and the server's web app), so the two
// never disagree. No DOM here: web/session/_test checks the table under
// node, and the browser tests check the pages show it.
//
// name is the person being helped as the expert knows them ("Grandma"),
// or '' when the page does not know it (a join by short code in the web
// app): the words then say "they".

// States a session page shows, in the order a session goes through them.
export const states = ['connecting', 'asking', 'viewing', 'control-asked', 'controlling', 'interrupted', 'ended', 'lost'];

// title is the page's heading: whom the expert is helping.
export function title(name) {
  return name ? `Helping ${name}` : 'Helping someone';
}

// stateLine is the sentence that says where the session stands.
export function stateLine(state, name) {
  const they = name || 'they';
  const They = name || 'They';
  const them = name || 'them';
  switch (state) {
    case 'connecting':
      return name ? `Connecting to ${name}…` : 'Connecting…';
    case 'asking':
      return `Waiting for ${them} to allow you to see the screen…`;
    case 'viewing':
      return `${They} allowed you to see the screen`;
    case 'control-asked':
      return `Asking ${them} for control of the mouse and keyboard…`;
    case 'controlling':
      return `${They} allowed you to control the mouse and keyboard`;
    case 'interrupted':
      return 'The connection is interrupted; waiting for it to come back…';
    case 'ended':
      return 'The session has ended';
    case 'lost':
      return `The connection to ${they === 'they' ? 'their' : they + "'s"} computer was lost`;
    default:
      return '';
  }
}

// reducedLine says why a moving area looks blurred: on a slow link the
// novice's side sends it at half resolution (rfb/scale.go) until it
// stops, then exact. Short, since it shares a line with the path;
// reducedTitle says the rest.
export const reducedLine = 'Slow connection: moving areas in less detail';
export const reducedTitle = 'The connection is slow, so areas that keep changing (a video, a window being dragged) are sent at lower resolution. They become sharp once they stop changing.';

// pathLine is the detail line of how the connection goes, from the
// path's name as transport/rtc and web/expert/path.js give it.
export function pathLine(path) {
  switch (path) {
    case '':
      return '';
    case 'direct':
      return 'Connection: direct';
    case 'punched':
      return 'Connection: direct, through both routers';
    case 'relay-udp':
      return 'Connection: relayed by the server (UDP)';
    case 'relay-tcp':
      return 'Connection: relayed by the server (TCP)';
    case 'relay-tls':
      return 'Connection: relayed by the server (TLS)';
    default:
      return `Connection: ${path}`;
  }
}

// reasonText turns the reason the other side gives for a change (its
// audit words, such as "novice refused control") into a sentence for
// the expert, or '' when the state line already says it all. A reason
// this table does not know is shown with "novice" replaced by the name.
export function reasonText(reason, name) {
  const r = String(reason ?? '').trim();
  // "novice declined; this invitation is now closed": each part.
  if (r.includes('; ')) {
    return r.split('; ').map((part) => reasonText(part, name)).filter((s) => s !== '').join('. ');
  }
  const They = name || 'They';
  const their = possessive(name);
  const known = new Map([
    ['novice allowed viewing', ''],
    ['novice allowed control', ''],
    ['expert asked for control', ''],
    ['expert asked to share clipboards', ''],
    ['novice declined', `${They} said no to sharing the screen`],
    ['novice refused control', `${They} said no to control`],
    ['novice refused to share the clipboard', `${They} said no to sharing the clipboard`],
    ['novice shared the clipboard', `${They} shared the clipboard`],
    ['novice took control back', `${They} took control back`],
    ['expert asked to exchange files', ''],
    ['novice allowed file transfers', `${They} allowed files`],
    ['novice refused file transfers', `${They} said no to files`],
    ['novice stopped file transfers', `${They} stopped files`],
    ['the expert gave control back', 'You gave control back'],
    ['the expert left the session', 'You left the session'],
    ['the expert left', 'You left the session'],
    ['the novice ended the session', `${They} ended the session`],
    ['novice stopped', `${They} stopped sharing`],
    ['the novice withdrew the invitation', `${They} withdrew the invitation`],
    ['the connection to the novice was lost', `The connection to ${their} computer was lost`],
    ['the assistance agent stopped', `Assist stopped on ${their} computer`],
  ]);
  if (known.has(r)) return known.get(r);
  if (/^expert .* authenticated$/.test(r)) return '';
  if (r === 'this invitation is now closed') return 'The invitation is now closed';
  const silent = /^no answer within (.+)$/.exec(r);
  if (silent) return `${They} did not answer within ${silent[1]}`;
  if (r.startsWith('allowed in advance')) return `${They} allowed this in advance`;
  return r.replace(/\bthe novice's\b/gi, their).replace(/\b(the )?novice\b/gi, name || 'the other person');
}

// possessive: "Grandma's" or "their".
export function possessive(name) {
  return name ? `${name}'s` : 'their';
}

// Special keys the browser (or the expert's own desktop) would keep for
// itself, sent to the other computer from a menu. keys: [keysym, code,
// press?]: a press without release holds the key until the end of the
// list, where held keys are released in reverse order.
export const specialKeys = [
  { id: 'ctrl-alt-del', label: 'Ctrl+Alt+Del', keys: [[0xffe3, 'ControlLeft', true], [0xffe9, 'AltLeft', true], [0xffff, 'Delete']] },
  { id: 'super', label: 'Super (Windows key)', keys: [[0xffeb, 'MetaLeft']] },
  { id: 'alt-tab', label: 'Alt+Tab', keys: [[0xffe9, 'AltLeft', true], [0xff09, 'Tab']] },
  { id: 'alt-f4', label: 'Alt+F4', keys: [[0xffe9, 'AltLeft', true], [0xffc1, 'F4']] },
  { id: 'print', label: 'Print Screen', keys: [[0xff61, 'PrintScreen']] },
];
