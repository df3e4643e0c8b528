// Unit tests of words.js: the session view's words, shared by assist
// join's page and the web app. Run by web/expert_script_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { states, title, stateLine, pathLine, reasonText, possessive, specialKeys } from '../words.js';

// Words the expert must never read: the project's own jargon.
const jargon = /novice|punched|rendezvous/i;

test('every state has a line, named or not, without jargon', () => {
  for (const s of states) {
    for (const name of ['Grandma', '']) {
      const line = stateLine(s, name);
      assert.ok(line.length > 0, `${s} ${name}`);
      assert.ok(!jargon.test(line), line);
      if (name && !['interrupted', 'ended'].includes(s)) assert.ok(line.includes(name), `${s}: ${line}`);
    }
  }
  assert.equal(stateLine('viewing', 'Grandma'), 'Grandma allowed you to see the screen');
  assert.equal(stateLine('viewing', ''), 'They allowed you to see the screen');
  assert.equal(stateLine('controlling', 'Grandma'), 'Grandma allowed you to control the mouse and keyboard');
  assert.equal(stateLine('lost', 'Grandma'), "The connection to Grandma's computer was lost");
  assert.equal(stateLine('lost', ''), 'The connection to their computer was lost');
  assert.equal(stateLine('bogus', 'Grandma'), '');
});

test('title and possessive', () => {
  assert.equal(title('Grandma'), 'Helping Grandma');
  assert.equal(title(''), 'Helping someone');
  assert.equal(possessive('Grandma'), "Grandma's");
  assert.equal(possessive(''), 'their');
});

test('pathLine says how, not the jargon', () => {
  assert.equal(pathLine(''), '');
  for (const p of ['direct', 'punched', 'relay-udp', 'relay-tcp', 'relay-tls']) {
    const line = pathLine(p);
    assert.ok(line.startsWith('Connection: '), line);
    assert.ok(!jargon.test(line), line);
  }
});

test('reasonText', () => {
  const cases = [
    ['novice allowed viewing', 'Grandma', ''],
    ['expert Max authenticated', 'Grandma', ''],
    ['novice refused control', 'Grandma', 'Grandma said no to control'],
    ['novice took control back', '', 'They took control back'],
    ['the expert gave control back', 'Grandma', 'You gave control back'],
    ['the expert left the session', 'Grandma', 'You left the session'],
    ['the novice ended the session', 'Grandma', 'Grandma ended the session'],
    ['novice declined; this invitation is now closed', 'Grandma', 'Grandma said no to sharing the screen. The invitation is now closed'],
    ['no answer within 1 minute', 'Grandma', 'Grandma did not answer within 1 minute'],
    ['allowed in advance (--allow control)', 'Grandma', 'Grandma allowed this in advance'],
    ["the novice's agent crashed", 'Grandma', "Grandma's agent crashed"],
    [undefined, 'Grandma', ''],
  ];
  for (const [reason, name, want] of cases) {
    assert.equal(reasonText(reason, name), want, String(reason));
  }
});

test('reasonText never passes jargon on, whatever the other side sends', () => {
  const words = ['novice', 'Novice', 'the novice', "the novice's", 'NOVICE', 'novices'];
  for (const w of words) {
    for (const name of ['Grandma', '']) {
      const got = reasonText(`x ${w} y; ${w} z`, name);
      if (w === 'novices') continue; // a plural is not the role's name
      assert.ok(!/\bnovice\b/i.test(got), `${w}: ${got}`);
    }
  }
});

test('special keys release every key they hold', () => {
  const ids = specialKeys.map((k) => k.id);
  for (const want of ['ctrl-alt-del', 'super', 'alt-tab']) assert.ok(ids.includes(want), want);
  assert.equal(new Set(ids).size, ids.length);
  for (const k of specialKeys) {
    assert.ok(k.keys.length > 0, k.id);
    // The last key is pressed and released; only modifiers are held.
    assert.ok(!k.keys[k.keys.length - 1][2], k.id);
    for (const [keysym, code] of k.keys) {
      assert.ok(Number.isInteger(keysym) && keysym > 0 && keysym <= 0xffff, `${k.id} ${keysym}`);
      assert.equal(typeof code, 'string');
    }
  }
});
