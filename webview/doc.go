// Package webview is the expert's built-in browser viewer: `assist join`
// serves it on loopback and opens it in the expert's browser. The page
// shows the novice's desktop with noVNC, the session state, a "Request
// control" button and a chat pane.
//
// Whoever can load the page can ask for control of the novice's desktop
// and chat as the expert, so every URL carries a per-session secret
// (http://127.0.0.1:PORT/s/SECRET/): other local users and web sites the
// expert visits cannot guess it, every other path is 404, the server
// refuses to listen beyond loopback, WebSockets are only accepted from the
// page's own origin, and the page forbids sending the secret on in a
// Referer header.
//
// The page talks to the server over two WebSockets:
//   - rfb: binary, the RFB stream of the novice's desktop, bridged to one
//     Backend.OpenDisplay connection per page;
//   - events: JSON text messages. The server sends Events (state changes,
//     chat lines, the end of the session) and, to one page only,
//     {"type":"error","text":...} when its request failed; the page sends
//     {"type":"chat","text":...}, {"type":"request_control"},
//     {"type":"request_clipboard"}, {"type":"give_back_control"} and
//     {"type":"leave"}.
package webview
