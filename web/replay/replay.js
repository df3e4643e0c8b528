// The recording player of assist replay --browser: noVNC shows the
// replayed desktop over the "rfb" WebSocket, 1:1 and lossless (as the
// helper saw it); Play, Pause and the seek bar POST to "control"; the
// position comes from polling "state" (see package replaypage).
//
// window.assistReplay reports, for tests:
//   rfb:     "connecting" | "connected" | "disconnected"
//   at:      the position in milliseconds, as the server last said
//   length:  the recording's length in milliseconds (0 while unknown)
//   playing: whether the clock runs
//   epoch:   how many times the picture was restarted (a seek backwards)
import { openScreen } from './session/screen.js';

const el = (id) => document.querySelector(`[data-testid="${id}"]`);
const status = { rfb: 'connecting', at: 0, length: 0, playing: false, epoch: -1 };
window.assistReplay = status;

let rfb = null;

function connect() {
  const url = new URL('rfb', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  status.rfb = 'connecting';
  const mine = openScreen(document.getElementById('screen'), url.href, { scale: '1:1' });
  rfb = mine;
  // An older connection's events, after a restart, change nothing.
  mine.addEventListener('connect', () => { if (rfb === mine) status.rfb = 'connected'; });
  mine.addEventListener('disconnect', () => {
    if (rfb !== mine) return;
    status.rfb = 'disconnected';
    rfb = null;
  });
}

function control(body) {
  return fetch('control', { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
}

const clock = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

let dragging = false;

async function poll() {
  try {
    const r = await fetch('state');
    if (r.ok) {
      const s = await r.json();
      status.at = s.at; status.length = s.length; status.playing = s.playing;
      if (s.epoch !== status.epoch) {
        // A new picture (the start, or a seek backwards): show it.
        const old = rfb;
        rfb = null;
        if (old) old.disconnect();
        status.epoch = s.epoch;
        connect();
      }
      const seek = el('seek');
      seek.max = String(Math.max(s.length, s.at));
      if (!dragging) seek.value = String(s.at);
      el('position').textContent = `${clock(s.at)} / ${clock(s.length)}`;
      el('recorded').textContent = s.recorded ? `recorded ${s.recorded}` : '';
    }
  } catch (e) {
    // The player stopped; the last picture stays.
  }
  setTimeout(poll, 250);
}

el('play').addEventListener('click', () => control({ action: 'play' }));
el('pause').addEventListener('click', () => control({ action: 'pause' }));
el('seek').addEventListener('input', () => { dragging = true; });
el('seek').addEventListener('change', (e) => {
  dragging = false;
  control({ action: 'seek', to: Number(e.target.value) });
});
poll();
