// Unit tests of company.js: reading where a company sign-in came back.
// Run by web/expert_script_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signedIn, startURL } from '../company.js';

test('signedIn', () => {
  const cases = [
    ['#signed-in=alice&confirmed=1', { user: 'alice', confirmed: true }],
    ['#signed-in=alice&confirmed=0', { user: 'alice', confirmed: false }],
    ['#signed-in=a.b-c_d', { user: 'a.b-c_d', confirmed: false }],
    ['#signed-in=', null],
    ['#signed-in=Alice', null],
    ['#signed-in=%3Cimg%20src%3Dx%3E', null],
    ['#signed-in=' + 'a'.repeat(33), null],
    ['#42-maple-otter', null],
    ['', null],
    ['#confirmed=1&signed-in=alice', null],
  ];
  for (const [hash, want] of cases) assert.deepEqual(signedIn(hash), want, hash);
});

test('startURL', () => {
  assert.equal(startURL('a b', 'c&d'), '/v1/oidc/start?state=a%20b&sig=c%26d');
});
