// Company sign-in: an organisation's helpers and admins sign in with
// their company's OpenID Connect provider (the server side is package
// messenger/oidclogin, under /v1/oidc/). No DOM: the page calls these.
//
// begin asks the server for a sign-in of this browser's device key; the
// server sets a cookie binding the sign-in to this browser and answers a
// challenge, which the key signs. startURL is where the browser then goes:
// the server checks the signature and the cookie and sends it on to the
// company's sign-in page, which sends it back to /#signed-in=USER.

import { PasskeyError, postJSON } from './passkey.js';

export async function begin({ org, key, device }) {
  // The binding cookie must be kept.
  const data = await postJSON('/v1/oidc/begin', { org, key, device }, 'same-origin');
  if (typeof data.state !== 'string' || typeof data.challenge !== 'string') {
    throw new PasskeyError('server', 'The server sent a bad answer. Try again later.');
  }
  return data;
}

export function startURL(state, sig) {
  return `/v1/oidc/start?state=${encodeURIComponent(state)}&sig=${encodeURIComponent(sig)}`;
}

// signedIn reads the account the server named after a company sign-in
// from the address's fragment ("#signed-in=USER&confirmed=0|1"), or null.
// It is a hint for the first screen only: the messenger's welcome says
// who this browser's key really belongs to.
export function signedIn(hash) {
  if (!hash.startsWith('#signed-in=')) return null;
  const p = new URLSearchParams(hash.slice(1));
  const user = p.get('signed-in') || '';
  if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(user)) return null;
  return { user, confirmed: p.get('confirmed') === '1' };
}
