// Command assist-wasm is the expert's side of Assist for a web browser,
// built with GOOS=js GOARCH=wasm and served by `assist serve` with the page
// in web/expert. It runs the code `assist join` runs, so the browser
// speaks exactly the same protocol: the handshake of package
// transport/rtc/auth inside the page's RTCDataChannel, then the session of
// package session (consent state, chat, one RFB stream per display).
//
// The page does what a browser does best: the signalling WebSocket, the
// RTCPeerConnection, noVNC. This program exposes, as globalThis.assistExpert:
//
//	parseCode(text) -> {lookup} or {error}
//	    reads a short code ("7-crayon-harbor") or a URL ending in one
//	    ("https://SERVER/#7-crayon-harbor"); otherwise .error is an Error
//	    with .kind "bad-code" and advice. The words never leave Go.
//	connect({code, name, channel, localDescription, remoteDescription, onEvent}) -> Promise<session>
//	    runs the expert's handshake over channel, an open RTCDataChannel,
//	    bound to the certificates named by the two SDP descriptions; then
//	    starts the session. onEvent receives {type: "state", state, rights,
//	    reason}, {type: "chat", text} and, last, {type: "ended", reason}.
//	    A failure rejects with an Error whose .kind is one of
//	    "bad-code", "wrong-password", "unknown-invitation", "version",
//	    "not-assist", "unreachable", "failed".
//	session.openDisplay() -> Promise<stream>
//	    a new RFB stream to the novice's desktop: stream.listen(onData,
//	    onClose), stream.send(Uint8Array), stream.close(). The page wraps
//	    it in the WebSocket-like object noVNC's RFB accepts.
//	session.requestControl(), session.sendChat(text), session.leave() -> Promise
//
// connect also takes {invitation, password} instead of code: the session
// id and password of a session with a contact (below).
//
// The messenger (package messenger's client, over the page's WebSocket):
//
//	device.newSeed() -> seed; device.publicKey(seed) -> {key} or {error};
//	device.signPasskey(seed, challenge) -> {sig} or {error}
//	    the browser's device key: an Ed25519 seed the page keeps in
//	    IndexedDB; it signs passkey ceremonies' challenges
//	    (messenger/passkey checks them).
//	messenger({seed, server, fingerprint, deviceName, onEvent, onClose}) -> Promise<client>
//	    logs in with the device key; onEvent gets each server push as
//	    the wire's JSON object. client: user, display, device;
//	    contacts(), devices(), removeDevice(id), setState(s), remove(user),
//	    block(user), unblock(user),
//	    ask(user, kind), answer(id, accept), cancel(id) -> Promise;
//	    contactInvite(onCode), contactAdd(code) -> Promise<{user, display,
//	    key, fingerprint}> (package pairing over the server's relay; the
//	    page pins key); deviceCode(onCode) -> Promise<{device,
//	    fingerprint}> (certifies the device that enters the code);
//	    sessionSecret({user, key, pinned, devices, session}) ->
//	    {password} or {error} (pairing.Trusted, then
//	    pairing.SessionSecret); close().
//	linkDevice({seed, server, fingerprint, user, deviceName, code, replace}) -> Promise<{device}>
//	    a new device key joins the account through a device code and
//	    replaces the unconfirmed device replace.
//
// On other platforms the command only says how to build it; its parts that
// need no browser are tested there.
package main
