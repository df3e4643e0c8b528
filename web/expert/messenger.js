// The messenger in the expert's web app: sign-in with a passkey, the
// contact list with live presence, requests for help with Accept and
// Decline, contact codes, and this account's devices. The connection to
// the server's messenger, the device key and the pairing run in
// assist.wasm (window.assistExpert); this module only shows them.
//
// Everything another person chose (account names, display names, device
// names) goes into the page as textContent, never as markup.
//
// window.assistMessenger reports what it is doing, for tests:
//   phase: "loading" | "signed-out" | "signing-in" | "connecting" | "online" | "offline"
//   user, display: the account, once signed in
//   confirmed: whether this browser is a confirmed device of the account
//   contacts: {user: state}, blocked: [user], requests: [request ids shown], devices: n,
//   unconfirmedDevices: how many of them wait for a device code
//   outgoing: {to, state: "waiting" | "accepted" | "declined" | "closed"} or null
//   error: {code, message} of the last failure, or null
//   lastCode: the contact or device code shown, if any
//   machines: {machine: state} of the organisations this account helps
//     (null: it helps none)
import * as passkey from './passkey.js';
import * as company from './company.js';
import * as store from './store.js';
import { stateOf, stateLabel, sortContacts, displayOf, deviceName, timeLeft, requestText, closedText, groupCode } from './people.js';

const el = (id) => document.querySelector(`[data-testid="${id}"]`);

const status = {
  phase: 'loading',
  user: '',
  display: '',
  confirmed: true,
  contacts: {},
  blocked: [],
  requests: [],
  devices: 0,
  unconfirmedDevices: 0,
  outgoing: null,
  error: null,
  lastCode: '',
  machines: null,
};
window.assistMessenger = status;

let hooks = null; // {startSession, inSession}
let seed = '';
let keyB64 = '';
let deviceId = ''; // this browser's device id, from the welcome
let fingerprint = '';
let client = null;
let retryTimer = 0;
let retryDelay = 2000;
const contacts = new Map(); // user -> {c, li}
const requests = new Map(); // request id -> {r, li}
let outgoing = null; // {request, to, display, li}
let ticker = 0;

function wasm() {
  return window.assistExpert;
}

// ---- Messages for people.

function say(id, text) {
  const p = el(id);
  if (p) p.textContent = text;
}

function showError(code, message) {
  status.error = { code, message };
  say('messenger-error', message);
  el('messenger-error').hidden = message === '';
}

function clearError() {
  status.error = null;
  el('messenger-error').hidden = true;
}

// ---- Sign-in.

function showPhase(phase) {
  status.phase = phase;
  const signedIn = phase === 'online' || phase === 'offline' || phase === 'connecting';
  el('signin').hidden = signedIn || phase === 'loading';
  el('messenger').hidden = !signedIn;
  el('me').hidden = !signedIn;
  el('sign-out').hidden = !signedIn;
  el('me-name').textContent = status.display;
  el('me-user').textContent = status.user;
  const badge = el('me-state');
  badge.dataset.state = phase === 'online' ? 'online' : 'offline';
  badge.textContent = phase === 'online' ? 'Online' : phase === 'connecting' ? 'Connecting…' : 'Offline';
  el('unconfirmed').hidden = !signedIn || status.confirmed;
  el('device-confirm-form').hidden = !signedIn || status.confirmed;
  el('device-add-box').hidden = !signedIn || !status.confirmed;
}

function signSeed(challenge) {
  let bin = '';
  for (const b of challenge) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const r = wasm().device.signPasskey(seed, b64);
  if (r.error) throw r.error;
  return r.sig;
}

async function afterPasskey(res) {
  status.user = res.user;
  status.display = res.display;
  status.confirmed = res.confirmed === true;
  await store.put('account', { user: res.user, display: res.display, confirmed: status.confirmed });
  say('signin-progress', '');
  connect();
}

async function signIn() {
  clearError();
  showPhase('signing-in');
  say('signin-progress', 'Use your passkey (your phone, security key or this computer)…');
  try {
    const res = await passkey.signIn({ key: keyB64, device: deviceName(navigator.userAgent), sign: signSeed });
    await afterPasskey(res);
  } catch (e) {
    say('signin-progress', '');
    showPhase('signed-out');
    showError(e.code || 'failed', e.message);
  }
}

async function register(user, display) {
  clearError();
  showPhase('signing-in');
  say('signin-progress', 'Create your passkey (your phone, security key or this computer)…');
  try {
    const res = await passkey.register({ user, display, key: keyB64, device: deviceName(navigator.userAgent), sign: signSeed });
    await afterPasskey(res);
  } catch (e) {
    say('signin-progress', '');
    showPhase('signed-out');
    showError(e.code || 'failed', e.message);
    if (e.code === 'taken' || e.code === 'invalid') el('register-user').focus();
  }
}

// companySignIn leaves the page for the company's sign-in page, which
// comes back to /#signed-in=USER (see start).
async function companySignIn(org) {
  clearError();
  showPhase('signing-in');
  say('signin-progress', 'Opening your company’s sign-in page…');
  try {
    const begun = await company.begin({ org, key: keyB64, device: deviceName(navigator.userAgent) });
    const sig = signSeed(passkey.fromB64(begun.challenge));
    location.assign(company.startURL(begun.state, sig));
  } catch (e) {
    say('signin-progress', '');
    showPhase('signed-out');
    showError(e.code || 'failed', e.message);
  }
}

async function signOut() {
  const c = client;
  client = null;
  clearTimeout(retryTimer);
  if (c) c.close();
  await store.del('account');
  status.user = '';
  status.display = '';
  resetLists();
  showPhase('signed-out');
  el('passkey-signin').focus();
}

// ---- The connection.

async function connect() {
  clearTimeout(retryTimer);
  showPhase('connecting');
  let c;
  try {
    c = await wasm().messenger({
      seed,
      server: location.origin,
      fingerprint,
      deviceName: deviceName(navigator.userAgent),
      onEvent: (m) => onEvent(c, m),
      onClose: (why) => onClose(c, why),
    });
  } catch (e) {
    if (e.code === 'unauthorized' || e.code === 'not-found') {
      // The server does not know this browser's key (any more): it was
      // removed from the account, or never signed in here.
      await store.del('account');
      resetLists();
      showPhase('signed-out');
      showError('signed-out', 'This browser is no longer signed in (it was removed from your account, or the server forgot it). Sign in again with your passkey.');
      return;
    }
    showError(e.code || 'failed', `Could not reach the messenger: ${e.message}. Trying again…`);
    showPhase('offline');
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 60000);
    return;
  }
  client = c;
  deviceId = c.device;
  retryDelay = 2000;
  status.user = c.user;
  status.display = c.display;
  clearError();
  showPhase('online');
  // Joining by code shows the same name to the other person.
  if (el('name').value === '') el('name').value = c.display;
  if (hooks.inSession()) sessionChanged(true);
  await Promise.all([refreshContacts(), refreshDevices(), refreshMachines()]);
  pollMachines();
}

// ---- The machines of the organisations this account helps (the help
// desk's console). Every field but the state is what an agent reported:
// text only.

const machines = new Map(); // machine account -> machine
// The server pushes presence to contacts only; the console asks again
// every few seconds (and when Refresh is pressed).
const machinesEvery = 5000;
let machinesTimer = 0;

function pollMachines() {
  clearTimeout(machinesTimer);
  machinesTimer = setTimeout(async () => {
    if (!client) return;
    await refreshMachines();
    pollMachines();
  }, machinesEvery);
}

async function refreshMachines() {
  const c = client;
  if (!c) return;
  let list;
  try {
    list = await c.machines();
  } catch (e) {
    if (client !== c) return;
    // Not a helper of any organisation: no console.
    machines.clear();
    status.machines = null;
    el('machines-box').hidden = true;
    if (e.code !== 'unauthorized') showError(e.code || 'failed', `Could not load the machines: ${e.message}.`);
    return;
  }
  if (client !== c) return;
  machines.clear();
  status.machines = {};
  const ul = el('machines');
  ul.replaceChildren();
  for (const m of list) {
    machines.set(m.user, m);
    status.machines[m.user] = m.state;
    ul.append(machineItem(m));
  }
  el('no-machines').hidden = list.length > 0;
  el('machines-box').hidden = false;
  await probeAudit(list);
}

// ---- The organisation's audit trail, for its admins. The server says
// who is an admin only by answering: each organisation of the machines
// listed is asked once for nothing (entries from the future); those it
// answers are this account's. Every entry's words come from peers: text
// only.

const auditAsked = new Set(); // organisations asked
const auditURLs = [];

async function probeAudit(list) {
  const c = client;
  const future = new Date(Date.now() + 366 * 864e5).toISOString().replace(/\.\d+Z$/, 'Z');
  for (const org of new Set(list.map((m) => m.org))) {
    if (auditAsked.has(org)) continue;
    auditAsked.add(org);
    try {
      await c.auditSearch(org, future, '');
    } catch (e) {
      if (e.code !== 'unauthorized' && e.code !== 'invalid') showError(e.code || 'failed', `Could not open ${org}'s audit trail: ${e.message}.`);
      continue;
    }
    if (client !== c) return;
    const opt = document.createElement('option');
    opt.value = org;
    opt.textContent = org;
    el('audit-org').append(opt);
    el('audit-box').hidden = false;
    status.auditOrgs = [...(status.auditOrgs || []), org];
  }
}

function auditDownload(id, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  auditURLs.push(url);
  el(id).href = url;
}

function auditClear() {
  for (const u of auditURLs.splice(0)) URL.revokeObjectURL(u);
  el('audit-entries').replaceChildren();
  el('audit-verdicts').replaceChildren();
  el('audit-exports').hidden = true;
  el('audit-progress').textContent = '';
}

async function searchAudit() {
  const c = client;
  if (!c) return;
  const org = el('audit-org').value;
  const day = el('audit-since').value; // the reader's midnight
  const since = day ? new Date(`${day}T00:00:00`).toISOString().replace(/\.\d+Z$/, 'Z') : '';
  auditClear();
  el('audit-progress').textContent = 'Searching…';
  let r;
  try {
    r = await c.auditSearch(org, since, el('audit-text').value.trim());
  } catch (e) {
    el('audit-progress').textContent = `Could not search ${org}'s audit trail: ${e.message}.`;
    return;
  }
  if (client !== c) return;
  const ul = el('audit-entries');
  for (const e of r.entries) {
    const li = document.createElement('li');
    li.dataset.testid = 'audit-entry';
    const when = document.createElement('time');
    when.dateTime = e.time;
    when.textContent = new Date(e.time).toLocaleString();
    // Who wrote the entry, in which chain: a line under the words, the
    // chain's long hash cut short (whole in the tooltip and the exports).
    const who = document.createElement('span');
    who.className = 'chain';
    const chain = String(e.chain).replace(/^sha256:/, '');
    who.title = `${e.party} ${e.chain} #${e.seq}`;
    who.textContent = ` · ${e.party} · chain ${chain.slice(0, 12)}… · #${e.seq}`;
    const words = document.createElement('span');
    words.dataset.testid = 'audit-words';
    words.className = 'words';
    words.textContent = e.words;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.append(when, who);
    li.append(words, meta);
    ul.append(li);
  }
  el('audit-progress').textContent = r.entries.length ? `${r.entries.length} entries.` : `No entries in ${org}'s audit trail match.`;
  auditDownload('audit-csv', r.csv, 'text/csv');
  auditDownload('audit-json', r.json, 'application/json');
  el('audit-csv').download = `${org}-audit.csv`;
  el('audit-json').download = `${org}-audit.json`;
  el('audit-exports').hidden = false;
  status.auditEntries = r.entries.length;
}

async function verifyAudit() {
  const c = client;
  if (!c) return;
  const org = el('audit-org').value;
  const ul = el('audit-verdicts');
  ul.replaceChildren();
  el('audit-progress').textContent = 'Verifying…';
  let chains;
  try {
    chains = await c.auditVerify(org);
  } catch (e) {
    el('audit-progress').textContent = `Could not verify ${org}'s audit trail: ${e.message}.`;
    return;
  }
  if (client !== c) return;
  let bad = 0;
  for (const v of chains) {
    const li = document.createElement('li');
    li.dataset.testid = 'audit-verdict';
    const whose = v.user ? `${v.user}'s chain` : "the server's chain";
    li.textContent = v.bad ? `${whose}: does not verify: ${v.bad}` : `${whose}: ok, ${v.entries} entries`;
    if (v.bad) bad++;
    ul.append(li);
  }
  const n = chains.length;
  el('audit-progress').textContent = bad
    ? `${bad} of ${n} ${n === 1 ? 'chain does' : 'chains do'} not verify.`
    : n === 1 ? 'The one chain verifies.' : `All ${n} chains verify.`;
  status.auditBad = bad;
}

function machineItem(m) {
  const li = document.createElement('li');
  li.className = 'contact';
  li.dataset.testid = 'machine';
  li.dataset.user = m.user;
  const dot = document.createElement('span');
  dot.className = `dot ${stateOf(m.state)}`;
  dot.setAttribute('aria-hidden', 'true');
  const who = document.createElement('span');
  who.className = 'who';
  const name = document.createElement('span');
  name.className = 'name';
  name.dataset.testid = 'machine-name';
  name.textContent = m.name;
  const acct = document.createElement('span');
  acct.className = 'user';
  acct.dataset.testid = 'machine-user';
  acct.textContent = `${m.user} · ${m.display} · ${m.org}`;
  who.append(name, acct);
  const state = document.createElement('span');
  state.className = 'presence';
  state.dataset.testid = 'machine-state';
  state.textContent = stateLabel(m.state);
  const offer = document.createElement('button');
  offer.type = 'button';
  offer.dataset.testid = 'offer-machine';
  offer.textContent = 'Offer help';
  offer.disabled = m.state === 'offline' || !!outgoing;
  offer.addEventListener('click', () => offerMachine(m.user));
  li.append(dot, who, state, offer);
  return li;
}

async function offerMachine(user) {
  const m = machines.get(user);
  if (!m || !client || outgoing) return;
  clearError();
  const display = `${m.name} (${m.display})`;
  outgoing = { request: '', to: user, display, machine: m };
  status.outgoing = { to: user, state: 'waiting' };
  el('outgoing').hidden = false;
  say('outgoing-text', `Offering help to ${display}… waiting for an answer.`);
  el('cancel-offer').hidden = false;
  const mine = outgoing;
  try {
    const asked = await client.ask(user, 'offer');
    if (outgoing === mine) {
      outgoing.request = asked.request;
    } else if (client) {
      client.cancel(asked.request).catch(() => {});
    }
  } catch (err) {
    endOutgoing('closed', `Could not offer help to ${display}: ${err.message}.`);
  }
}

// startMachineSession: a machine this page offered from the list
// accepted; the organisation's server names its key.
function startMachineSession(m, machine) {
  if (!m || m.role !== 'expert' || !m.peer || !m.org || m.peer.user !== machine.user || m.org.name !== machine.org || !client) {
    showError('role', 'The server\'s answer does not come from the machine you offered help to: no session.');
    return;
  }
  const r = client.orgSessionSecret({ key: m.peer.device.key, session: m.session });
  if (r.error) {
    showError('failed', `Cannot start the session: ${r.error.message}`);
    return;
  }
  hooks.startSession({ invitation: m.session, password: r.password, name: status.display, peer: machine.name });
}

function onClose(c, why) {
  if (client !== c) return;
  client = null;
  clearTimeout(machinesTimer);
  showPhase('offline');
  showError('closed', `The connection to the messenger was lost${why ? ` (${why})` : ''}. Reconnecting…`);
  retryTimer = setTimeout(connect, retryDelay);
}

function onEvent(c, m) {
  if (client !== c || !m || typeof m.type !== 'string') return;
  switch (m.type) {
    case 'presence': {
      const e = contacts.get(m.user);
      if (e) {
        e.c.state = m.state;
        renderContacts();
      }
      break;
    }
    case 'request':
      addRequest(m);
      break;
    case 'request-closed':
      if (outgoing && outgoing.request === m.request) {
        endOutgoing(m.reason === 'cancelled' ? 'closed' : m.reason === 'expired' ? 'closed' : 'closed',
          m.reason === 'expired' ? `${outgoing.display} did not answer within 5 minutes.` : `The offer to ${outgoing.display} is closed.`);
      } else {
        closeRequest(m.request, m.reason);
      }
      break;
    case 'accepted':
      if (outgoing && outgoing.request === m.request) {
        const machine = outgoing.machine;
        endOutgoing('accepted', `${outgoing.display} accepted. Connecting…`);
        if (machine) startMachineSession(m, machine);
        else startContactSession(m);
      }
      break;
    case 'declined':
      if (outgoing && outgoing.request === m.request) endOutgoing('declined', `${outgoing.display} said no.`);
      break;
    case 'removed':
    case 'blocked':
      forget(m.user);
      refreshContacts();
      break;
    case 'contact-added':
    case 'unblocked':
      refreshContacts();
      break;
    case 'device-added':
    case 'device-removed':
      refreshDevices();
      break;
  }
}

// ---- Contacts.

function resetLists() {
  contacts.clear();
  el('contacts').replaceChildren();
  for (const id of [...requests.keys()]) dropRequest(id);
  el('devices').replaceChildren();
  status.contacts = {};
  status.devices = 0;
  status.outgoing = null;
  outgoing = null;
  el('outgoing').hidden = true;
  machines.clear();
  el('machines').replaceChildren();
  el('machines-box').hidden = true;
  status.machines = null;
  auditAsked.clear();
  auditClear();
  el('audit-org').replaceChildren();
  el('audit-box').hidden = true;
  status.auditOrgs = null;
}

async function refreshContacts() {
  const c = client;
  if (!c) return;
  let list;
  try {
    list = await c.contacts();
  } catch (e) {
    showError(e.code || 'failed', `Could not load your contacts: ${e.message}.`);
    return;
  }
  if (client !== c) return;
  const seen = new Set();
  for (const ct of list.contacts) {
    seen.add(ct.user);
    const e = contacts.get(ct.user);
    if (e) e.c = ct;
    else contacts.set(ct.user, { c: ct, li: contactItem(ct.user) });
  }
  for (const [user, e] of contacts) {
    if (!seen.has(user)) {
      e.li.remove();
      contacts.delete(user);
    }
  }
  renderContacts();
  renderBlocked(list.blocked);
}

function renderBlocked(blocked) {
  status.blocked = [...blocked];
  const ul = el('blocked');
  ul.replaceChildren();
  for (const user of blocked) {
    const li = document.createElement('li');
    li.dataset.user = user;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = user;
    const unblock = document.createElement('button');
    unblock.type = 'button';
    unblock.className = 'quiet';
    unblock.dataset.testid = 'unblock';
    unblock.textContent = 'Unblock';
    unblock.addEventListener('click', async () => {
      try {
        await client.unblock(user);
      } catch (err) {
        showError(err.code || 'failed', `Could not unblock ${user}: ${err.message}.`);
      }
      refreshContacts();
    });
    li.append(name, unblock);
    ul.append(li);
  }
  el('blocked-box').hidden = blocked.length === 0;
}

async function blockContact(user) {
  const e = contacts.get(user);
  if (!e || !client) return;
  if (!confirm(`Block ${displayOf(e.c)} (${user})? They are removed from your contacts and cannot ask you for help or add you again until you unblock them.`)) return;
  try {
    await client.block(user);
    await forget(user);
  } catch (err) {
    showError(err.code || 'failed', `Could not block ${user}: ${err.message}.`);
  }
  refreshContacts();
}

function contactItem(user) {
  const li = document.createElement('li');
  li.className = 'contact';
  li.dataset.testid = 'contact';
  li.dataset.user = user;
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.setAttribute('aria-hidden', 'true');
  const who = document.createElement('span');
  who.className = 'who';
  const name = document.createElement('span');
  name.className = 'name';
  name.dataset.testid = 'contact-name';
  const acct = document.createElement('span');
  acct.className = 'user';
  acct.textContent = user;
  who.append(name, acct);
  const state = document.createElement('span');
  state.className = 'presence';
  state.dataset.testid = 'contact-state';
  const offer = document.createElement('button');
  offer.type = 'button';
  offer.dataset.testid = 'offer';
  offer.textContent = 'Offer help';
  offer.addEventListener('click', () => offerHelp(user));
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'quiet';
  remove.dataset.testid = 'remove-contact';
  remove.textContent = 'Remove';
  remove.addEventListener('click', () => removeContact(user));
  const block = document.createElement('button');
  block.type = 'button';
  block.className = 'quiet';
  block.dataset.testid = 'block-contact';
  block.textContent = 'Block';
  block.addEventListener('click', () => blockContact(user));
  li.append(dot, who, state, offer, remove, block);
  return li;
}

function renderContacts() {
  const ul = el('contacts');
  const sorted = sortContacts([...contacts.values()].map((e) => e.c));
  status.contacts = {};
  sorted.forEach((ct, i) => {
    const e = contacts.get(ct.user);
    const s = stateOf(ct.state);
    status.contacts[ct.user] = s;
    e.li.dataset.state = s;
    e.li.querySelector('.name').textContent = displayOf(ct);
    e.li.querySelector('.presence').textContent = stateLabel(s);
    e.li.querySelector('[data-testid="offer"]').disabled = s === 'offline' || outgoing !== null || hooks.inSession();
    e.li.querySelector('[data-testid="offer"]').title = s === 'offline' ? `${displayOf(ct)} is offline` : `Ask ${displayOf(ct)} whether you may help now`;
    // Move only what is out of place: moving a node loses its focus.
    if (ul.children[i] !== e.li) ul.insertBefore(e.li, ul.children[i] || null);
  });
  el('no-contacts').hidden = contacts.size > 0;
}

async function removeContact(user) {
  const e = contacts.get(user);
  if (!e || !client) return;
  if (!confirm(`Remove ${displayOf(e.c)} (${user}) from your contacts? You will no longer see each other or get each other's requests.`)) return;
  try {
    await client.remove(user);
    await forget(user);
  } catch (err) {
    showError(err.code || 'failed', `Could not remove ${user}: ${err.message}.`);
  }
  refreshContacts();
}

// ---- Offering help (this side is the expert).

async function offerHelp(user) {
  const e = contacts.get(user);
  if (!e || !client || outgoing) return;
  clearError();
  const display = displayOf(e.c);
  const why = await cannotHelpHere(user, display);
  if (why) {
    note(why);
    return;
  }
  if (!client || outgoing) return;
  outgoing = { request: '', to: user, display };
  status.outgoing = { to: user, state: 'waiting' };
  el('outgoing').hidden = false;
  say('outgoing-text', `Offering help to ${display}… waiting for an answer.`);
  el('cancel-offer').hidden = false;
  renderContacts();
  const mine = outgoing;
  try {
    const asked = await client.ask(user, 'offer');
    if (outgoing === mine) {
      outgoing.request = asked.request;
    } else if (client) {
      // Withdrawn before the server had named it.
      client.cancel(asked.request).catch(() => {});
    }
  } catch (err) {
    endOutgoing('closed', `Could not offer help to ${display}: ${err.message}.`);
  }
}

function endOutgoing(state, text) {
  if (!outgoing) return;
  status.outgoing = { to: outgoing.to, state };
  say('outgoing-text', text);
  el('cancel-offer').hidden = true;
  outgoing = null;
  renderContacts();
}

async function cancelOffer() {
  if (!outgoing || !client) return;
  const o = outgoing;
  try {
    if (o.request) await client.cancel(o.request);
  } catch {
    // Answered or expired meanwhile: its own message says so.
  }
  if (outgoing === o) endOutgoing('closed', `You withdrew your offer to ${o.display}.`);
}

// ---- Incoming requests.

function addRequest(r) {
  if (requests.has(r.request)) return;
  const li = document.createElement('li');
  li.className = 'request';
  li.dataset.testid = 'request';
  li.dataset.request = r.request;
  li.dataset.kind = r.kind;
  li.tabIndex = 0;
  const who = document.createElement('span');
  who.className = 'who';
  const text = document.createElement('span');
  text.className = 'text';
  text.dataset.testid = 'request-text';
  text.textContent = requestText(r);
  const user = document.createElement('span');
  user.className = 'user';
  user.textContent = r.from;
  who.append(text, user);
  const left = document.createElement('span');
  left.className = 'left';
  left.dataset.testid = 'request-left';
  const accept = document.createElement('button');
  accept.type = 'button';
  accept.className = 'primary';
  accept.dataset.testid = 'accept';
  accept.textContent = 'Accept';
  const decline = document.createElement('button');
  decline.type = 'button';
  decline.dataset.testid = 'decline';
  decline.textContent = 'Decline';
  const hint = document.createElement('span');
  hint.className = 'hint';
  li.append(who, left, accept, decline, hint);
  if (r.kind === 'offer') {
    // The browser cannot share this computer's screen.
    accept.disabled = true;
    hint.textContent = 'To accept, use Assist on the computer that needs help.';
  }
  accept.addEventListener('click', () => answer(r.request, true));
  decline.addEventListener('click', () => answer(r.request, false));
  li.addEventListener('keydown', (ev) => {
    if (ev.target !== li) return;
    if (ev.key === 'Enter' && !accept.disabled) {
      ev.preventDefault();
      answer(r.request, true);
    } else if (ev.key === 'Escape' || ev.key === 'Delete') {
      ev.preventDefault();
      answer(r.request, false);
    }
  });
  requests.set(r.request, { r, li });
  el('requests').append(li);
  tick();
  renderRequests();
  // Focus lands on the new request, so Enter accepts it, unless the
  // person is typing somewhere: an Enter meant for that must not accept.
  const a = document.activeElement;
  const typing = a && (((a.tagName === 'INPUT' || a.tagName === 'TEXTAREA') && a.value !== '') || a.isContentEditable);
  if (!typing && !hooks.inSession()) li.focus();
}

function renderRequests() {
  status.requests = [...requests.keys()];
  // In a session the list is out of sight: the header says someone waits.
  const badge = el('requests-badge');
  badge.textContent = requests.size === 1 ? '1 request for help waiting' : `${requests.size} requests for help waiting`;
  badge.hidden = requests.size === 0 || !(hooks && hooks.inSession());
  el('requests-panel').hidden = requests.size === 0;
  document.title = requests.size > 0 ? `(${requests.size}) Request for help — Assist` : document.title.replace(/^\(\d+\) Request for help — /, '');
  if (requests.size > 0 && !ticker) ticker = setInterval(tick, 1000);
  if (requests.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = 0;
  }
}

function tick() {
  const now = Date.now();
  for (const [, e] of requests) {
    const t = timeLeft(e.r.expires, now);
    e.li.querySelector('.left').textContent = t ? `${t} left` : 'expired';
  }
}

function dropRequest(id) {
  const e = requests.get(id);
  if (!e) return;
  const hadFocus = e.li.contains(document.activeElement);
  e.li.remove();
  requests.delete(id);
  renderRequests();
  if (hadFocus) {
    const next = el('requests').firstElementChild;
    if (next) next.focus();
  }
}

function closeRequest(id, reason) {
  const e = requests.get(id);
  if (!e) return;
  dropRequest(id);
  note(closedText(reason, displayOf({ user: e.r.from, display: e.r.display })));
}

function note(text) {
  say('messenger-note', text);
  el('messenger-note').hidden = text === '';
}

async function answer(id, accept) {
  const e = requests.get(id);
  if (!e || !client) return;
  if (accept) {
    // A session from here could not start: say so, and leave the request
    // open for a device where it can.
    const why = await cannotHelpHere(e.r.from, displayOf({ user: e.r.from, display: e.r.display }));
    if (why) {
      note(why);
      return;
    }
  }
  for (const b of e.li.querySelectorAll('button')) b.disabled = true;
  const who = displayOf({ user: e.r.from, display: e.r.display });
  let m;
  try {
    m = await client.answer(id, accept);
  } catch (err) {
    dropRequest(id);
    note(err.code === 'not-found' ? `The request from ${who} is no longer open (it expired, was cancelled, or was answered elsewhere).` : `Could not answer ${who}: ${err.message}.`);
    return;
  }
  dropRequest(id);
  if (!accept) {
    note(`You declined ${who}'s request.`);
    return;
  }
  note(`You accepted ${who}'s request. Connecting…`);
  startContactSession(m);
}

// cannotHelpHere says why a session with user cannot start in this
// browser, or '' if it can: the other side refuses a browser no other
// device confirmed, and this side refuses a contact whose key it never
// pinned (contacts added in another browser or on a computer).
async function cannotHelpHere(user, who) {
  if (!status.confirmed) {
    return `You cannot accept in this browser yet: it is not confirmed, so ${who}'s Assist would refuse it. Accept on one of your confirmed devices, or confirm this browser under “Your devices”.`;
  }
  const pins = (await store.get('pins')) || {};
  if (!Array.isArray(pins[user]) || pins[user].length === 0) {
    return `You cannot accept in this browser: ${who} was added as a contact on another device, so their key is not confirmed here. Accept there, or add ${who} again with a contact code in this browser.`;
  }
  return '';
}

// ---- The session with a contact.

async function startContactSession(m) {
  if (!m || m.role !== 'expert' || !m.peer || !client) {
    showError('role', 'This browser can only help (view the other computer). Use Assist on the computer that needs help.');
    return;
  }
  const who = displayOf(m.peer);
  const pins = (await store.get('pins')) || {};
  const ct = contacts.get(m.peer.user);
  const r = client.sessionSecret({
    user: m.peer.user,
    key: m.peer.device.key,
    pinned: Array.isArray(pins[m.peer.user]) ? pins[m.peer.user] : [],
    devices: ct ? ct.c.devices : [],
    session: m.session,
  });
  if (r.error) {
    showError('not-pinned', `Cannot start a session with ${who}: ${r.error.message}`);
    return;
  }
  hooks.startSession({ invitation: m.session, password: r.password, name: status.display, peer: who });
}

// sessionChanged: the page's session began or ended.
export function sessionChanged(inSession) {
  if (client) client.setState(inSession ? 'busy' : 'online').catch(() => {});
  if (status.phase === 'online') {
    renderContacts();
    const badge = el('me-state');
    badge.dataset.state = inSession ? 'busy' : 'online';
    badge.textContent = inSession ? 'Busy' : 'Online';
  }
  // Signing out in the middle of a session would only confuse.
  el('sign-out').disabled = inSession;
  renderRequests();
}

// ---- Adding contacts by code.

async function pin(contact) {
  const pins = (await store.get('pins')) || {};
  const keys = Array.isArray(pins[contact.user]) ? pins[contact.user] : [];
  if (!keys.includes(contact.key)) keys.push(contact.key);
  pins[contact.user] = keys;
  await store.put('pins', pins);
}

async function forget(user) {
  const pins = (await store.get('pins')) || {};
  if (!(user in pins)) return;
  delete pins[user];
  await store.put('pins', pins);
}

async function paired(promise) {
  try {
    const ct = await promise;
    await pin(ct);
    status.lastCode = '';
    el('contact-code').hidden = true;
    say('contact-progress', `Contact added: ${ct.display} (${ct.user}, key ${ct.fingerprint}).`);
    refreshContacts();
  } catch (e) {
    el('contact-code').hidden = true;
    say('contact-progress', `No contact added: ${e.message}`);
  } finally {
    el('show-contact-code').disabled = false;
    el('contact-add').disabled = false;
  }
}

function showContactCode() {
  if (!client) return;
  el('show-contact-code').disabled = true;
  el('contact-add').disabled = true;
  say('contact-progress', 'Getting a code…');
  paired(client.contactInvite((code) => {
    status.lastCode = code;
    const p = el('contact-code');
    p.textContent = groupCode(code);
    p.hidden = false;
    say('contact-progress', 'Read this code to the other person, or send it to them. They enter it under “Add a contact”. Waiting for them… (the code works for 10 minutes)');
  }));
}

function addContact(code) {
  if (!client) return;
  el('show-contact-code').disabled = true;
  el('contact-add').disabled = true;
  say('contact-progress', 'Checking the code with the other person…');
  paired(client.contactAdd(code));
}

// ---- Devices.

async function refreshDevices() {
  const c = client;
  if (!c) return;
  let list;
  try {
    list = await c.devices();
  } catch (e) {
    showError(e.code || 'failed', `Could not load your devices: ${e.message}.`);
    return;
  }
  if (client !== c) return;
  const ul = el('devices');
  ul.replaceChildren();
  status.devices = list.length;
  status.unconfirmedDevices = 0;
  // Oldest first: the first device needs no certificate; any later one
  // without is a browser that signed in with a passkey and waits for a
  // device code.
  list.forEach((d, i) => {
    const unconfirmed = i > 0 && !d.cert;
    if (unconfirmed) status.unconfirmedDevices++;
    const li = document.createElement('li');
    li.dataset.testid = 'device';
    li.dataset.device = d.id;
    li.dataset.self = d.self ? 'true' : 'false';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = d.name;
    const tags = document.createElement('span');
    tags.className = 'tags';
    tags.textContent = [d.self ? 'this browser' : '', unconfirmed ? 'not confirmed yet' : '', d.online ? 'online' : 'offline'].filter(Boolean).join(' · ');
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'quiet';
    remove.dataset.testid = 'remove-device';
    remove.textContent = 'Remove';
    remove.addEventListener('click', () => removeDevice(d));
    li.append(name, tags, remove);
    ul.append(li);
    if (d.self && d.cert && !status.confirmed) {
      // Another device confirmed this browser.
      status.confirmed = true;
      store.put('account', { user: status.user, display: status.display, confirmed: true });
      showPhase(status.phase);
    }
  });
}

// showDeviceCode lets another browser or computer join this account,
// confirmed by this device (it signs the new device's key).
function showDeviceCode() {
  if (!client) return;
  el('show-device-code').disabled = true;
  say('device-progress', 'Getting a code…');
  client.deviceCode((code) => {
    status.lastCode = code;
    const p = el('device-code');
    p.textContent = groupCode(code);
    p.hidden = false;
    say('device-progress', 'Enter this code on the other device: in a browser signed in with your passkey, under “Your devices”; on a computer, with assist login --code. Waiting… (the code works for 10 minutes)');
  }).then((r) => {
    say('device-progress', `Device added and confirmed (key ${r.fingerprint}).`);
    refreshDevices();
  }).catch((e) => {
    say('device-progress', `No device added: ${e.message}`);
  }).finally(() => {
    status.lastCode = '';
    el('device-code').hidden = true;
    el('show-device-code').disabled = false;
  });
}

// confirmBrowser makes this browser a confirmed device with the device
// code of a confirmed one: a new device key joins through that device's
// link (which certifies it) and replaces the unconfirmed one.
async function confirmBrowser(code) {
  const old = client;
  const oldId = deviceId;
  const next = wasm().device.newSeed();
  el('device-confirm').disabled = true;
  say('confirm-progress', 'Checking the code with your other device…');
  client = null;
  clearTimeout(retryTimer);
  if (old) old.close();
  showPhase('connecting');
  try {
    await wasm().linkDevice({ seed: next, server: location.origin, fingerprint, user: status.user,
      deviceName: deviceName(navigator.userAgent), code, replace: oldId });
  } catch (e) {
    say('confirm-progress', `Not confirmed: ${e.message}`);
    el('device-confirm').disabled = false;
    connect();
    return;
  }
  seed = next;
  keyB64 = wasm().device.publicKey(seed).key;
  await store.put('device', { seed });
  status.confirmed = true;
  await store.put('account', { user: status.user, display: status.display, confirmed: true });
  say('confirm-progress', '');
  el('device-confirm').disabled = false;
  note('This browser is confirmed: sessions with your contacts can start here.');
  connect();
}

async function removeDevice(d) {
  if (!client) return;
  const what = d.self ? 'this browser (you will be signed out here)' : `“${d.name}”`;
  if (!confirm(`Remove ${what} from your account? It can no longer sign in or take part in sessions.`)) return;
  try {
    await client.removeDevice(d.id);
  } catch (e) {
    showError(e.code || 'failed', e.code === 'invalid' ? `Could not remove ${d.name}: ${e.message}` : `Could not remove ${d.name}: ${e.message}.`);
    return;
  }
  if (d.self) {
    signOut();
    return;
  }
  refreshDevices();
}

// wrongAddress says where passkeys work when this page was opened at
// another address (an IP address, say): browsers bind a passkey to the
// server's name.
function wrongAddress(rpId) {
  if (typeof rpId !== 'string' || !/^[a-z0-9.-]+$/i.test(rpId)) return;
  const host = location.hostname;
  if (host === rpId || host.endsWith(`.${rpId}`)) return;
  const u = new URL(location.href);
  u.hostname = rpId;
  u.hash = '';
  const p = el('wrong-address');
  const a = document.createElement('a');
  a.href = u.href;
  a.textContent = u.origin;
  p.replaceChildren('Passkeys work only at this server\'s name: open ', a, ' to sign in.');
  p.hidden = false;
}

// ---- Start.

export async function startMessenger(h) {
  hooks = h;
  el('passkey-signin').addEventListener('click', () => signIn());
  el('register-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    register(el('register-user').value.trim().toLowerCase(), el('register-display').value.trim());
  });
  el('company-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    companySignIn(el('company-org').value.trim().toLowerCase());
  });
  el('sign-out').addEventListener('click', () => signOut());
  el('cancel-offer').addEventListener('click', () => cancelOffer());
  el('refresh-machines').addEventListener('click', () => {
    // Refresh asks again about the organisations this account was not
    // an admin of (it may have become one).
    for (const org of auditAsked) if (!(status.auditOrgs || []).includes(org)) auditAsked.delete(org);
    refreshMachines();
  });
  el('audit-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    searchAudit();
  });
  el('audit-verify').addEventListener('click', () => verifyAudit());
  el('show-contact-code').addEventListener('click', () => showContactCode());
  el('show-device-code').addEventListener('click', () => showDeviceCode());
  el('device-confirm-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    confirmBrowser(el('device-code-input').value);
    el('device-code-input').value = '';
  });
  el('contact-add-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    addContact(el('contact-code-input').value);
    el('contact-code-input').value = '';
  });
  try {
    const dev = await store.get('device');
    seed = dev && typeof dev.seed === 'string' ? dev.seed : '';
    let k = seed ? wasm().device.publicKey(seed) : { error: true };
    if (k.error) {
      seed = wasm().device.newSeed();
      await store.put('device', { seed });
      k = wasm().device.publicKey(seed);
    }
    keyB64 = k.key;
    const info = await passkey.serverInfo();
    fingerprint = info.fingerprint;
    wrongAddress(info.rpId);
  } catch (e) {
    showPhase('signed-out');
    el('signin').hidden = true;
    showError('unavailable', `The messenger is not available here: ${e.message}`);
    return;
  }
  const back = company.signedIn(location.hash);
  if (back) {
    // Back from a company sign-in: this browser's key is now a device of
    // the account (the messenger's welcome confirms whose).
    history.replaceState(null, '', location.pathname + location.search);
    await store.put('account', { user: back.user, display: back.user, confirmed: back.confirmed });
  }
  const account = await store.get('account');
  if (account && account.user) {
    status.user = account.user;
    status.display = account.display || account.user;
    status.confirmed = account.confirmed !== false;
    connect();
  } else {
    showPhase('signed-out');
  }
}
