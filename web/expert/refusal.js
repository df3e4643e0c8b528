// How the novice's side turns an expert away, read from its words: the
// reason of a session's end ("novice declined", "no answer within 1
// minute") and the rendezvous server's "bye" reason, which is free text
// written by transport.DeniedMessage and transport.ClosedMessage. No DOM
// here, so node's test runner checks it (web/expert/_test).

// defaultCooldownMs is the novice's default rest after a no
// (transport.DefaultDenyCooldown): the page waits this long before it
// offers Reconnect again. A novice with another cooldown tells the exact
// time when Reconnect is refused.
export const defaultCooldownMs = 120000;

const deniedPrefix = 'The person you are helping said no.';
const closedPrefix = 'The person you are helping said no ';

const closedNote = '; this invitation is now closed';

// isNo reports whether a session ended because the novice said no to
// being seen, or let the question go unanswered.
export function isNo(reason) {
  if (typeof reason !== 'string') return false;
  if (reason.endsWith(closedNote)) reason = reason.slice(0, -closedNote.length);
  return reason === 'novice declined' || /^no answer within \d+ (second|minute)s?$/.test(reason);
}

// closesInvitation reports whether the no that ended a session was the
// invitation's last (the novice's side says so: cmd/assist closedNote).
export function closesInvitation(reason) {
  return isNo(reason) && reason.endsWith(closedNote);
}

// parseRefusal reads the novice's refusal of a join: {kind: 'denied',
// waitMs} while the invitation rests after a no, {kind: 'closed'} once the
// noes closed it, or null for any other reason.
export function parseRefusal(reason) {
  if (typeof reason !== 'string' || reason.length > 512) return null;
  if (reason.startsWith(deniedPrefix)) {
    const m = /You can ask again in about (\d{1,4}) (second|minute)s?\.$/.exec(reason);
    const waitMs = m ? Number(m[1]) * (m[2] === 'minute' ? 60000 : 1000) : defaultCooldownMs;
    return { kind: 'denied', waitMs };
  }
  if (reason.startsWith(closedPrefix) && reason.includes('so this invitation is closed')) {
    return { kind: 'closed' };
  }
  return null;
}

// formatWait says a wait of ms as the Reconnect button shows it: "1:05".
export function formatWait(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
