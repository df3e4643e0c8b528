// DisplayChannel wraps a display stream of assist.wasm (session.openDisplay)
// in the WebSocket-like object noVNC's RFB accepts in place of a URL: the
// properties core/websock.js checks (send, close, binaryType, onopen,
// onmessage, onclose, onerror, protocol, readyState). It is open from the
// start: the stream exists once openDisplay resolves.
export class DisplayChannel {
  constructor(stream) {
    this.binaryType = 'arraybuffer';
    this.protocol = '';
    this.readyState = 'open';
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    this._stream = stream;
    stream.listen(
      (data) => {
        if (this.readyState === 'open' && this.onmessage) this.onmessage({ data });
      },
      (reason) => {
        if (this.readyState === 'closed') return;
        this.readyState = 'closed';
        if (this.onclose) this.onclose({ code: 1000, reason, wasClean: true });
      });
  }

  send(data) {
    if (this.readyState !== 'open') return;
    this._stream.send(data);
  }

  close() {
    if (this.readyState !== 'open') return;
    this.readyState = 'closing';
    this._stream.close();
  }
}
