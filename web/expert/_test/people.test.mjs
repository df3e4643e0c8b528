import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stateOf, stateLabel, sortContacts, displayOf, deviceName, timeLeft, requestText, closedText, groupCode } from '../people.js';

test('states', () => {
  assert.equal(stateLabel('busy'), 'Busy (in a session)');
  assert.equal(stateOf('__proto__'), 'offline');
  assert.equal(stateLabel('constructor'), 'Offline');
  assert.equal(stateLabel(undefined), 'Offline');
});

test('sortContacts: reachable first, then by name', () => {
  const got = sortContacts([
    { user: 'zed', display: 'Zed', state: 'offline' },
    { user: 'bob', display: 'Bob', state: 'away' },
    { user: 'amy', display: 'Amy', state: 'online' },
    { user: 'cy', display: 'Cy', state: 'busy' },
    { user: 'al', display: '', state: 'online' },
    { user: 'odd', display: 'Odd', state: 'weird' },
  ]).map((c) => c.user);
  assert.deepEqual(got, ['al', 'amy', 'cy', 'bob', 'odd', 'zed']);
});

test('displayOf', () => {
  assert.equal(displayOf({ user: 'bob', display: 'Bob B' }), 'Bob B');
  assert.equal(displayOf({ user: 'bob', display: '' }), 'bob');
  assert.equal(displayOf({ user: 'bob' }), 'bob');
});

test('deviceName', () => {
  assert.equal(deviceName('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36'), 'Chrome on Linux');
  assert.equal(deviceName('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0'), 'Firefox on Windows');
  assert.equal(deviceName('Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15'), 'Safari on macOS');
  assert.equal(deviceName(''), 'Browser');
});

test('timeLeft', () => {
  const now = Date.parse('2026-12-06T16:00:00Z');
  assert.equal(timeLeft('2026-12-06T16:05:00Z', now), '5:00');
  assert.equal(timeLeft('2026-12-06T16:00:01.2Z', now), '0:02');
  assert.equal(timeLeft('2026-12-06T16:00:00Z', now), '');
  assert.equal(timeLeft('not a time', now), '');
});

test('requestText and closedText', () => {
  assert.equal(requestText({ from: 'bob', display: 'Bob B', kind: 'help' }), 'Bob B asks for your help');
  assert.equal(requestText({ from: 'bob', display: '', kind: 'offer' }), 'bob offers to help you');
  assert.match(closedText('expired', 'Bob'), /expired/);
  assert.match(closedText('cancelled', 'Bob'), /^Bob cancelled/);
  assert.match(closedText('toString', 'Bob'), /closed/);
});

test('groupCode', () => {
  assert.equal(groupCode('k7m29xqtabcd'), 'K7M2-9XQT-ABCD');
  assert.equal(groupCode('K7M2-9XQT-ABCD'), 'K7M2-9XQT-ABCD');
  assert.equal(groupCode(''), '');
});
