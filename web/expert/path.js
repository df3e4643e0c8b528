// The path of a connection, named as transport/rtc's Conn.Path names it:
// "direct" (host to host, no NAT in between), "punched" (UDP through NAT),
// "relay-udp", "relay-tcp" or "relay-tls" (through TURN, by how our end
// reaches it).
//
// rtc reads pion's selected pair, whose candidates are what was signalled.
// A browser's statistics differ in ways rtc never sees, so the candidates
// are first reduced to what they mean:
//   - Chrome may select a pair whose local candidate is server-reflexive
//     with an address of this very machine (STUN on loopback answers with
//     127.0.0.1 for a socket based on another interface): no NAT rewrote
//     anything, so it is a host candidate.
//   - A peer-reflexive remote candidate is the address a check came from
//     before (or instead of) the signalled candidate. Chrome hides its
//     address and shows only its port. One that is a signalled candidate
//     of the peer is that candidate; one at a link-local or loopback
//     address, which no NAT rewrites, is a host candidate.
//   - A server-reflexive remote candidate at a loopback address or at one
//     of the peer's host addresses was not rewritten either.
// No DOM: node's test runner imports this module (path.test.mjs).

import { normalizeAddress } from './signal.js';

// classifyPath follows rtc's classifyPath: local and remote are candidate
// types ("host", "srflx", "prflx", "relay") once reduced as above;
// relayProtocol is the local relay candidate's TURN transport.
export function classifyPath(local, remote, relayProtocol) {
  if (local === 'relay') {
    if (relayProtocol === 'tcp') return 'relay-tcp';
    if (relayProtocol === 'tls') return 'relay-tls';
    return 'relay-udp';
  }
  if (remote === 'relay') return 'relay-udp';
  if (local === 'host' && remote === 'host') return 'direct';
  return 'punched';
}

// isLoopback: 127.0.0.0/8, ::1 and IPv4-mapped loopback.
export function isLoopback(addr) {
  const a = normalizeAddress(addr);
  return /^127\.\d+\.\d+\.\d+$/.test(a) || a === '::1' || /^::ffff:127\./.test(a);
}

// isLinkLocal: 169.254.0.0/16 and fe80::/10.
export function isLinkLocal(addr) {
  const a = normalizeAddress(addr);
  return /^169\.254\.\d+\.\d+$/.test(a) || /^fe[89ab][0-9a-f]:/.test(a);
}

function candidateAddress(c) {
  return normalizeAddress(c.address ?? c.ip ?? '');
}

// notRewritten reports whether a reflexive candidate's address is one no
// NAT produced: a loopback address, or one of the machine's own host
// addresses (ownHosts), with the port of its base when that is known.
function notRewritten(addr, port, relatedPort, ownHosts) {
  if (addr === '') return false;
  if (!isLoopback(addr) && !ownHosts.has(addr)) return false;
  return relatedPort == null || relatedPort === port;
}

// localType reduces our selected candidate; ownHosts holds the addresses
// of our host candidates.
export function localType(c, ownHosts) {
  const t = c.candidateType;
  if ((t === 'srflx' || t === 'prflx') && notRewritten(candidateAddress(c), c.port, c.relatedPort, ownHosts)) return 'host';
  return t;
}

// signalledType reduces one of the peer's signalled candidates (as
// parseCandidateLine reads them); peerHosts holds the peer's host
// addresses.
function signalledType(c, peerHosts) {
  if (c.type === 'srflx' && notRewritten(c.address, c.port, c.relatedPort, peerHosts)) return 'host';
  return c.type;
}

// remoteType reduces the peer's selected candidate; signalled is the list
// of the peer's candidates (RemoteCandidates.list).
export function remoteType(c, signalled) {
  const peerHosts = new Set(signalled.filter((s) => s.type === 'host').map((s) => s.address));
  const addr = candidateAddress(c);
  const t = c.candidateType;
  if (t === 'srflx' && notRewritten(addr, c.port, c.relatedPort, peerHosts)) return 'host';
  if (t !== 'prflx') return t;
  // The signalled candidates it may be: same address and port, or the
  // same port when the browser hides the address.
  const same = signalled.filter((s) => s.port === c.port && (addr === '' || s.address === addr) && s.protocol === (c.protocol || s.protocol));
  if (same.length > 0) {
    const types = new Set(same.map((s) => signalledType(s, peerHosts)));
    // Every candidate it may be must agree: otherwise it may be one a NAT
    // made, and a NAT is what "punched" is about.
    return types.size === 1 ? [...types][0] : 'prflx';
  }
  if (addr !== '' && (isLinkLocal(addr) || isLoopback(addr) || peerHosts.has(addr))) return 'host';
  return 'prflx';
}

// selectedPair finds the selected candidate pair in an RTCStatsReport (or
// any Map-like object with forEach and get): the transport's selected pair
// (Chrome, Safari), else the pair marked selected (Firefox), else a
// nominated pair that succeeded. It returns {pair, local, remote} or null.
export function selectedPair(stats) {
  let pair = null;
  stats.forEach((s) => {
    if (!pair && s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId) || null;
  });
  if (!pair) {
    stats.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.selected === true) pair = s;
    });
  }
  if (!pair) {
    stats.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s;
    });
  }
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  if (!local || !remote) return null;
  return { pair, local, remote };
}

// pathFromStats names the path of the selected pair in stats; signalled is
// the peer's candidates (RemoteCandidates.list). It returns {path, local,
// remote, pair}: the reduced candidate types, and the pair as the browser
// has it and as reduced ("srflx>host/host"), or null when no pair is
// selected.
export function pathFromStats(stats, signalled) {
  const sel = selectedPair(stats);
  if (!sel) return null;
  const ownHosts = new Set();
  stats.forEach((s) => {
    if (s.type === 'local-candidate' && s.candidateType === 'host') {
      const a = candidateAddress(s);
      if (a !== '') ownHosts.add(a);
    }
  });
  const local = localType(sel.local, ownHosts);
  const remote = remoteType(sel.remote, signalled);
  const show = (raw, reduced) => (raw === reduced ? raw : `${raw}>${reduced}`);
  const pair = `${show(sel.local.candidateType, local)}/${show(sel.remote.candidateType, remote)}`;
  return { path: classifyPath(local, remote, sel.local.relayProtocol), local, remote, pair };
}

// connectionPath reads pc's statistics; it resolves with pathFromStats'
// answer.
export async function connectionPath(pc, signalled) {
  return pathFromStats(await pc.getStats(), signalled);
}
