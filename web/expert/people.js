// What the messenger page shows about people, devices and requests,
// without the DOM (unit tests in _test/people.test.mjs). Everything here
// may come from another person (names, display names): the page puts it
// in textContent only.

const stateOrder = new Map([['online', 0], ['busy', 1], ['away', 2], ['offline', 3]]);

const stateLabels = new Map([
  ['online', 'Online'],
  ['busy', 'Busy (in a session)'],
  ['away', 'Away'],
  ['offline', 'Offline'],
]);

// stateOf returns a known presence state; anything else is "offline".
export function stateOf(s) {
  return stateOrder.has(s) ? s : 'offline';
}

export function stateLabel(s) {
  return stateLabels.get(stateOf(s));
}

// sortContacts orders contacts as a help desk reads them: who can be
// reached first (online, busy, away, offline), then by name.
export function sortContacts(list) {
  return [...list].sort((a, b) =>
    stateOrder.get(stateOf(a.state)) - stateOrder.get(stateOf(b.state)) ||
    displayOf(a).localeCompare(displayOf(b)) ||
    String(a.user).localeCompare(String(b.user)));
}

// displayOf is the name to show for a user: the display name, or the
// account name when there is none.
export function displayOf(p) {
  return p && typeof p.display === 'string' && p.display !== '' ? p.display : String(p && p.user || '');
}

// deviceName names this browser for the device list: "Chrome on Linux".
export function deviceName(ua) {
  ua = String(ua || '');
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' :
    /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Windows/.test(ua) ? 'Windows' : /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' :
    /Mac OS X|Macintosh/.test(ua) ? 'macOS' : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

// timeLeft says how long until expires (an RFC 3339 time) from now (ms):
// "4:59", or "" once it has passed or when it cannot be read.
export function timeLeft(expires, now) {
  const t = Date.parse(expires);
  if (Number.isNaN(t)) return '';
  const s = Math.ceil((t - now) / 1000);
  if (s <= 0) return '';
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// requestText is the line for an incoming request; kind "help": they ask
// this user for help; "offer": they offer to help this user.
export function requestText(r) {
  const who = displayOf({ user: r.from, display: r.display });
  return r.kind === 'offer' ? `${who} offers to help you` : `${who} asks for your help`;
}

// closedText says why a request went away.
export function closedText(reason, who) {
  switch (reason) {
    case 'expired': return `The request from ${who} expired (nobody answered within 5 minutes).`;
    case 'cancelled': return `${who} cancelled the request.`;
    case 'answered': return `The request from ${who} was answered on another of your devices.`;
    case 'declined': return `The request from ${who} was declined on another of your devices.`;
  }
  return `The request from ${who} is closed.`;
}

// groupCode prints a contact or device code 4-4-4 for reading aloud.
export function groupCode(code) {
  const c = String(code).replace(/[^0-9A-Za-z]/g, '').toUpperCase();
  return c.match(/.{1,4}/g)?.join('-') ?? '';
}
