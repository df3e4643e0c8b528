// Unit tests of path.js: naming the path from a browser's statistics as
// transport/rtc names it from pion's. Run by web/expert_js_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPath, isLoopback, isLinkLocal, pathFromStats, connectionPath, selectedPair } from '../path.js';
import { RemoteCandidates } from '../signal.js';

test('classifyPath follows rtc', () => {
  const cases = [
    ['host', 'host', '', 'direct'],
    ['host', 'srflx', '', 'punched'],
    ['srflx', 'host', '', 'punched'],
    ['prflx', 'prflx', '', 'punched'],
    ['host', 'prflx', '', 'punched'],
    ['relay', 'host', 'udp', 'relay-udp'],
    ['relay', 'host', 'tcp', 'relay-tcp'],
    ['relay', 'relay', 'tls', 'relay-tls'],
    ['relay', 'host', undefined, 'relay-udp'],
    ['host', 'relay', '', 'relay-udp'],
    ['srflx', 'relay', 'tcp', 'relay-udp'],
  ];
  for (const [local, remote, proto, want] of cases) {
    assert.equal(classifyPath(local, remote, proto), want, `${local}/${remote} ${proto}`);
  }
});

test('isLoopback and isLinkLocal', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
  for (const a of ['128.0.0.1', '10.0.0.1', '::2', 'fd00::1', '', undefined, 'x127.0.0.1']) assert.ok(!isLoopback(a), String(a));
  for (const a of ['169.254.1.2', 'fe80::1', 'FE80::abcd', 'febf::1']) assert.ok(isLinkLocal(a), a);
  for (const a of ['169.253.1.2', 'fec0::1', 'fe8::1', '10.0.0.1', '']) assert.ok(!isLinkLocal(a), a);
});

// stats builds an RTCStatsReport-like Map with the selected pair of local
// and remote candidates, and other local candidates.
function stats(local, remote, others = []) {
  const m = new Map();
  const add = (s) => m.set(s.id, s);
  add({ id: 'T', type: 'transport', selectedCandidatePairId: 'CP' });
  add({ id: 'CP', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', state: 'succeeded', nominated: true });
  add({ id: 'L', type: 'local-candidate', protocol: 'udp', ...local });
  add({ id: 'R', type: 'remote-candidate', protocol: 'udp', ...remote });
  others.forEach((o, i) => add({ id: `O${i}`, type: 'local-candidate', protocol: 'udp', ...o }));
  return m;
}

function signalled(...lines) {
  const r = new RemoteCandidates();
  for (const l of lines) r.add(l);
  return r.list;
}

const myHost = { candidateType: 'host', address: '192.0.2.2', port: 57929 };
const peer = signalled(
  'candidate:1 1 udp 2130706431 192.0.2.2 37879 typ host',
  'candidate:2 1 udp 2130706431 fd00::2 38327 typ host',
  'candidate:3 1 udp 1694498815 127.0.0.1 50380 typ srflx raddr 0.0.0.0 rport 50380',
  'candidate:4 1 udp 1694498815 198.51.100.9 40001 typ srflx raddr 10.1.1.1 rport 40001',
  'candidate:5 1 udp 2130706431 10.1.1.1 40001 typ host',
  'candidate:6 1 udp 511 203.0.113.3 33854 typ relay raddr 127.0.0.1 rport 45728',
);

test('pathFromStats names the path of the selected pair', () => {
  const cases = [
    ['host to host', { candidateType: 'host', address: 'fd00::2', port: 1 }, { candidateType: 'host', address: 'fd00::2', port: 38327 }, [], 'direct', 'host/host'],
    // Chrome, both ends on one machine: STUN on loopback answers with
    // 127.0.0.1 for a socket based on another interface.
    ['local srflx on loopback', { candidateType: 'srflx', address: '127.0.0.1', port: 57929, relatedAddress: '192.0.2.2', relatedPort: 57929 },
      { candidateType: 'host', address: '192.0.2.2', port: 37879 }, [myHost], 'direct', 'srflx>host/host'],
    ['local prflx at an own address', { candidateType: 'prflx', address: '192.0.2.2', port: 57929 },
      { candidateType: 'host', address: '192.0.2.2', port: 37879 }, [myHost], 'direct', 'prflx>host/host'],
    ['local srflx through NAT', { candidateType: 'srflx', address: '198.51.100.1', port: 61000, relatedAddress: '10.0.0.2', relatedPort: 50000 },
      { candidateType: 'host', address: '192.0.2.9', port: 1 }, [{ candidateType: 'host', address: '10.0.0.2', port: 50000 }], 'punched', 'srflx/host'],
    ['local srflx at an own address, port rewritten', { candidateType: 'srflx', address: '192.0.2.2', port: 61000, relatedAddress: '192.0.2.2', relatedPort: 57929 },
      { candidateType: 'host', address: '192.0.2.2', port: 37879 }, [myHost], 'punched', 'srflx/host'],
    // Chrome hides a peer-reflexive candidate's address; its port says
    // which signalled candidate it is.
    ['remote prflx, port of a host', { candidateType: 'host', address: 'fd00::2', port: 1 }, { candidateType: 'prflx', address: '', port: 38327 }, [], 'direct', 'host/prflx>host'],
    ['remote prflx, port of a loopback srflx', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '', port: 50380 }, [], 'direct', 'host/prflx>host'],
    ['remote prflx, port of a host and of a srflx', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '', port: 40001 }, [], 'punched', 'host/prflx'],
    ['remote prflx, address and port of a srflx', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '198.51.100.9', port: 40001 }, [], 'punched', 'host/prflx>srflx'],
    ['remote prflx, address and port of a host', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '10.1.1.1', port: 40001 }, [], 'direct', 'host/prflx>host'],
    ['remote prflx, unknown', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '', port: 9 }, [], 'punched', 'host/prflx'],
    ['remote prflx, unknown public address', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '198.51.100.77', port: 9 }, [], 'punched', 'host/prflx'],
    ['remote prflx, link-local', { candidateType: 'host', address: 'fe80::1', port: 1 }, { candidateType: 'prflx', address: 'fe80::2', port: 9 }, [], 'direct', 'host/prflx>host'],
    ['remote prflx, another port of a peer host', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'prflx', address: '10.1.1.1', port: 9 }, [], 'direct', 'host/prflx>host'],
    ['remote srflx on loopback', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'srflx', address: '127.0.0.1', port: 50380, relatedAddress: '0.0.0.0', relatedPort: 50380 }, [], 'direct', 'host/srflx>host'],
    ['remote srflx through NAT', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'srflx', address: '198.51.100.9', port: 40001, relatedAddress: '10.1.1.1', relatedPort: 40001 }, [], 'punched', 'host/srflx'],
    ['local relay over UDP', { candidateType: 'relay', address: '203.0.113.1', port: 5, relayProtocol: 'udp' }, { candidateType: 'host', address: '10.1.1.1', port: 40001 }, [], 'relay-udp', 'relay/host'],
    ['local relay over TCP', { candidateType: 'relay', address: '203.0.113.1', port: 5, relayProtocol: 'tcp' }, { candidateType: 'host', address: '10.1.1.1', port: 40001 }, [], 'relay-tcp', 'relay/host'],
    ['local relay over TLS', { candidateType: 'relay', address: '203.0.113.1', port: 5, relayProtocol: 'tls' }, { candidateType: 'srflx', address: '198.51.100.9', port: 40001 }, [], 'relay-tls', 'relay/srflx'],
    ['remote relay', { candidateType: 'host', address: '192.0.2.2', port: 1 }, { candidateType: 'relay', address: '203.0.113.3', port: 33854 }, [], 'relay-udp', 'host/relay'],
    ['remote prflx, port of a relay', { candidateType: 'srflx', address: '198.51.100.1', port: 2, relatedAddress: '10.0.0.2', relatedPort: 3 }, { candidateType: 'prflx', address: '', port: 33854 }, [], 'relay-udp', 'srflx/prflx>relay'],
  ];
  for (const [name, local, remote, others, want, pair] of cases) {
    const got = pathFromStats(stats(local, remote, others), peer);
    assert.equal(got.path, want, `${name}: path`);
    assert.equal(got.pair, pair, `${name}: pair`);
  }
});

test('selectedPair finds the pair as Chrome, Firefox and others report it', () => {
  assert.equal(selectedPair(new Map()), null);
  const chrome = stats({ candidateType: 'host', address: 'a', port: 1 }, { candidateType: 'host', address: 'b', port: 2 });
  assert.equal(selectedPair(chrome).pair.id, 'CP');
  // Firefox: no transport stats; the pair says it is selected.
  const firefox = new Map([
    ['P1', { id: 'P1', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', state: 'succeeded', nominated: true, selected: false }],
    ['P2', { id: 'P2', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', state: 'succeeded', nominated: true, selected: true }],
    ['L', { id: 'L', type: 'local-candidate', candidateType: 'host', address: 'a', port: 1 }],
    ['R', { id: 'R', type: 'remote-candidate', candidateType: 'host', address: 'b', port: 2 }],
  ]);
  assert.equal(selectedPair(firefox).pair.id, 'P2');
  // Neither: a nominated pair that succeeded.
  firefox.delete('P2');
  assert.equal(selectedPair(firefox).pair.id, 'P1');
  firefox.get('P1').state = 'in-progress';
  assert.equal(selectedPair(firefox), null);
  // A pair whose candidates are missing (the connection is closing).
  const broken = stats({}, {});
  broken.delete('R');
  assert.equal(selectedPair(broken), null);
  assert.equal(pathFromStats(broken, []), null);
});

test('connectionPath reads a peer connection', async () => {
  const pc = { getStats: async () => stats({ candidateType: 'srflx', address: '127.0.0.1', port: 7, relatedAddress: '192.0.2.2', relatedPort: 7 }, { candidateType: 'host', address: '192.0.2.2', port: 8 }) };
  assert.equal((await connectionPath(pc, [])).path, 'direct');
  // Older Chrome calls the address "ip".
  const old = { getStats: async () => stats({ candidateType: 'host', ip: '10.0.0.2', port: 7 }, { candidateType: 'prflx', ip: '198.51.100.4', port: 8 }) };
  assert.equal((await connectionPath(old, [])).path, 'punched');
});
