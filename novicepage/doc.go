// Package novicepage is the novice's local page for `assist invite`: a
// view of the invitation and the session, and buttons, in the novice's own
// browser. It holds no session logic. The caller pushes a Status snapshot
// (SetStatus) and chat lines (AddChat), and reads what the novice clicked
// from Actions; the page shows the code to read out, who is connected and
// how, the pending consent question with Allow and Deny, Take back control,
// End session, Withdraw invitation, and the chat.
//
// Whoever can load the page can let an expert control the desktop, so it
// is guarded like the expert's viewer (package webview): it listens on
// loopback only, every URL carries a per-run secret
// (http://127.0.0.1:PORT/s/SECRET/) and every other path is 404, the Host
// header must name loopback (no DNS rebinding), the WebSocket must come
// from the page's own origin, and the page sends no Referer.
//
// The page talks to the server over one WebSocket, "events", of JSON text
// messages. The server sends
//   - {"type":"status","status":{...}}: the whole current Status, on
//     connect and whenever it changes;
//   - {"type":"chat","reset":bool,"lines":[...]}: chat lines the page has
//     not shown; reset means "replace what you show" (on connect, so a
//     reload shows the history, and when a page fell behind the bounded
//     history);
//   - {"type":"notice","text":...}: to one page, the reply to its action
//     (for example "too late: the question was answered in the terminal").
//
// The page sends {"type":"answer","question":ID,"allow":BOOL},
// {"type":"take_back"}, {"type":"end"}, {"type":"withdraw"},
// {"type":"chat","text":...}, {"type":"clipboard","allow":BOOL},
// {"type":"files","allow":BOOL} and {"type":"keep_sharing"} (the answer to
// "Still sharing with NAME?", Status.StillSharing); the app's page also
// {"type":"get_help"}, {"type":"ask","user":...} and
// {"type":"email","to":...}. Anything else closes that page's connection.
//
// A file the novice picks or drops on the page is POSTed to
// /s/SECRET/upload (same origin only, its name in X-Assist-Name), kept in
// Options.UploadDir under its sanitised name and handed to the caller as
// ActSendFile; the caller's Reply is the upload's answer.
//
// The novice reads no word of the program's ("novice", "expert",
// "rendezvous", the names of network paths): Reason turns the session's
// reasons into theirs, and Status.Detail, the technical path, is shown
// only under the page's Details.
//
// Any number of tabs may be open: they all show the same state, because
// each is sent the latest snapshot rather than a queue of changes, so a
// tab that does not read can delay nobody and never needs a buffer of
// its own.
package novicepage
