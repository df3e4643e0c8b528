// Passkeys: sign in to the messenger with WebAuthn (the server side is
// package messenger/passkey, under /v1/webauthn/). No DOM: the page and
// the tests call these.
//
// Each ceremony also carries this browser's device key: the server ties
// the key to the account (as its first device when registering, as a
// device still to be confirmed when signing in), and the key signs the
// ceremony's challenge so that nobody can tie a key they do not hold.
// sign(challengeBytes) returns the signature as base64url; the page's
// WebAssembly makes it.

// PasskeyError is a failure with a code the page tells apart and a
// message for people.
export class PasskeyError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const base = '/v1/webauthn/';

// postJSON posts body as JSON to url, a sign-in endpoint (this file's, or
// company.js's: both answer a refusal with {"error","message"}), and
// resolves the answer's object. credentials is fetch's: 'same-origin'
// where the server binds the sign-in to this browser by a cookie.
export async function postJSON(url, body, credentials = 'omit') {
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials,
      cache: 'no-store',
    });
  } catch (e) {
    throw new PasskeyError('network', `Could not reach the server: ${e.message}. Check your network connection, then try again.`);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // Answered below.
  }
  if (!res.ok) {
    const code = data && typeof data.error === 'string' ? data.error : 'server';
    const message = data && typeof data.message === 'string' ? data.message : `The server answered ${res.status}. Try again later.`;
    throw new PasskeyError(code, message);
  }
  if (!data || typeof data !== 'object') throw new PasskeyError('server', 'The server sent a bad answer. Try again later.');
  return data;
}

function post(path, body) {
  return postJSON(base + path, body);
}

export function fromB64(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

// browserError turns what navigator.credentials threw into advice.
function browserError(e) {
  if (e && e.name === 'NotAllowedError') return new PasskeyError('cancelled', 'No passkey was used (cancelled, or it took too long). Try again when you are ready.');
  if (e && e.name === 'InvalidStateError') return new PasskeyError('exists', 'This security key or phone already has a passkey for this server. Choose Sign in instead.');
  if (e && e.name === 'SecurityError') return new PasskeyError('origin', 'Passkeys do not work at this address. Open the page by the server\'s name (not its IP address), over HTTPS.');
  return new PasskeyError('browser', `The browser could not use a passkey: ${e && e.message ? e.message : e}.`);
}

export function supported() {
  return typeof window !== 'undefined' && typeof window.PublicKeyCredential === 'function' &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function';
}

// register creates the account {user, display} with a new passkey and this
// browser ({key, device}) as its first device. Resolves {user, display,
// confirmed}.
export async function register({ user, display, key, device, sign }) {
  if (!supported()) throw new PasskeyError('unsupported', 'This browser cannot use passkeys. Use a current Chrome, Edge, Firefox or Safari.');
  const begun = await post('register/begin', { user, display, key, device });
  const options = PublicKeyCredential.parseCreationOptionsFromJSON(begun.publicKey);
  let cred;
  try {
    cred = await navigator.credentials.create({ publicKey: options });
  } catch (e) {
    throw browserError(e);
  }
  const sig = await sign(fromB64(begun.publicKey.challenge));
  return post('register/finish', { ceremony: begun.ceremony, credential: cred.toJSON(), sig });
}

// signIn uses a passkey of an existing account on this browser ({key,
// device}). Resolves {user, display, confirmed}; confirmed is false when
// this browser is new to the account and another device must confirm it.
export async function signIn({ key, device, sign }) {
  if (!supported()) throw new PasskeyError('unsupported', 'This browser cannot use passkeys. Use a current Chrome, Edge, Firefox or Safari.');
  const begun = await post('login/begin', { key, device });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begun.publicKey);
  let cred;
  try {
    cred = await navigator.credentials.get({ publicKey: options });
  } catch (e) {
    throw browserError(e);
  }
  const sig = await sign(fromB64(begun.publicKey.challenge));
  return post('login/finish', { ceremony: begun.ceremony, credential: cred.toJSON(), sig });
}

// serverInfo returns {fingerprint, rpId}: the fingerprint ("sha256:HEX"
// of the server's certificate) goes into the messenger login.
export async function serverInfo() {
  let res;
  try {
    res = await fetch(base + 'server', { credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new PasskeyError('network', `Could not reach the server: ${e.message}.`);
  }
  if (!res.ok) throw new PasskeyError('server', `The server answered ${res.status}.`);
  const data = await res.json();
  if (typeof data.fingerprint !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(data.fingerprint)) throw new PasskeyError('server', 'The server sent a bad answer.');
  return data;
}
