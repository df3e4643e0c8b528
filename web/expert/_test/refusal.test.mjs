// Unit tests of refusal.js: reading the novice's noes. Run by
// web/expert_script_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isNo, closesInvitation, parseRefusal, formatWait, defaultCooldownMs } from '../refusal.js';

test('isNo', () => {
  for (const r of ['novice declined', 'no answer within 1 minute', 'no answer within 2 seconds', 'novice declined; this invitation is now closed']) assert.ok(isNo(r), r);
  for (const r of ['', undefined, null, 'novice refused control', 'the expert left the session', 'no answer within', 'novice declined!', 'bye; this invitation is now closed']) assert.ok(!isNo(r), String(r));
});

test('closesInvitation', () => {
  for (const r of ['novice declined; this invitation is now closed', 'no answer within 1 minute; this invitation is now closed']) assert.ok(closesInvitation(r), r);
  for (const r of ['novice declined', 'no answer within 1 minute', 'the expert left; this invitation is now closed', undefined]) assert.ok(!closesInvitation(r), String(r));
});

test('parseRefusal', () => {
  const cases = [
    ['The person you are helping said no. You can ask again in about 2 minutes.', { kind: 'denied', waitMs: 120000 }],
    ['The person you are helping said no. You can ask again in about 1 minute.', { kind: 'denied', waitMs: 60000 }],
    ['The person you are helping said no. You can ask again in about 30 seconds.', { kind: 'denied', waitMs: 30000 }],
    ['The person you are helping said no. Later.', { kind: 'denied', waitMs: defaultCooldownMs }],
    ['The person you are helping said no three times, so this invitation is closed. Ask them for a new one if they still want help.', { kind: 'closed' }],
    ['The person you are helping said no 7 times, so this invitation is closed. Ask them for a new one if they still want help.', { kind: 'closed' }],
    ['the connection could not be set up', null],
    ['auth-failed', null],
    ['', null],
    [undefined, null],
    [42, null],
    ['The person you are helping said no. ' + 'x'.repeat(600), null],
  ];
  for (const [reason, want] of cases) assert.deepEqual(parseRefusal(reason), want, String(reason));
});

test('formatWait', () => {
  assert.equal(formatWait(120000), '2:00');
  assert.equal(formatWait(65000), '1:05');
  assert.equal(formatWait(1), '0:01');
  assert.equal(formatWait(-5), '0:00');
});
