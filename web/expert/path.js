// The path of a connection, named as transport/rtc's Conn.Path names it:
// "direct" (host to host), "punched" (through NAT), "relay-udp",
// "relay-tcp" or "relay-tls" (through TURN, by how our end reaches it).

// classifyPath follows rtc's classifyPath.
function classifyPath(local, remote, relayProtocol) {
  if (local === 'relay') {
    if (relayProtocol === 'tcp') return 'relay-tcp';
    if (relayProtocol === 'tls') return 'relay-tls';
    return 'relay-udp';
  }
  if (remote === 'relay') return 'relay-udp';
  if (local === 'host' && remote === 'host') return 'direct';
  return 'punched';
}

// connectionPath reads the selected candidate pair from pc's statistics;
// hosts holds the peer's signalled host candidates as "address port". It
// resolves with "" when no pair is selected.
export async function connectionPath(pc, hosts) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s;
    });
  }
  if (!pair) return '';
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  if (!local || !remote) return '';
  let remoteType = remote.candidateType;
  // A peer-reflexive candidate at one of the peer's host addresses is that
  // host candidate: the check beat the signalling.
  const addr = remote.address || remote.ip;
  if (remoteType === 'prflx' && hosts.has(`${addr} ${remote.port}`)) remoteType = 'host';
  return classifyPath(local.candidateType, remoteType, local.relayProtocol);
}
