// Package passkey signs people in to the messenger from a web browser with
// passkeys (WebAuthn, github.com/go-webauthn/webauthn), served by `assist
// serve` under /v1/webauthn/.
//
// A passkey never replaces the device key: every browser holds its own
// Ed25519 device key (made by the page's WebAssembly, kept in IndexedDB),
// and the browser talks to the messenger (/v1/messenger) with that key,
// exactly as `assist` does. The passkey decides which account a browser's
// device key may join:
//
//   - Registering a passkey creates the account, with the browser as its
//     first device (POST register/begin, then register/finish).
//   - Signing in with a passkey on another browser adds that browser's key
//     to the account as a device that no other device has certified yet
//     (POST login/begin, then login/finish). Contacts accept a device key
//     for a session only if it is pinned or chains by certificates to a
//     pinned key, so such a browser sees contacts, presence, requests and
//     devices, but sessions with contacts start only once another device
//     of the account has confirmed it with a device code.
//
// Both finishing steps also carry a signature by the device key over the
// ceremony's challenge, so nobody can tie a key they do not hold to an
// account.
//
// The ceremonies' state stays on the server, in memory, for at most
// CeremonyTTL, is used once, and is bound to the configured relying party
// (the server's host) and origins. There is no cookie and no session
// token: after a ceremony the browser proves itself to the messenger with
// its device key at every connection.
package passkey
