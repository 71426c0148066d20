// The embedding API's command parser (web/js/embed.js): what a page that
// frames a meeting may send. Anything not namespaced is not ours and is
// ignored; ours but wrong is refused with a reason; nothing throws.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommand } from '../../web/js/embed.js';

test('commands are namespaced objects of a known type', () => {
  assert.deepEqual(parseCommand({ aconfi: 1, type: 'mute' }), { type: 'mute' });
  assert.deepEqual(parseCommand({ aconfi: 1, type: 'leave', extra: 'ignored' }), { type: 'leave' });
  assert.deepEqual(parseCommand({ aconfi: 1, type: 'join' }), { type: 'join' });
  assert.deepEqual(parseCommand({ aconfi: 1, type: 'join', name: '  Ada  ', mic: false, camera: true }),
    { type: 'join', name: 'Ada', mic: false, camera: true });
});

test('messages not for us are ignored', () => {
  for (const data of [undefined, null, 0, 'join', '{"aconfi":1,"type":"join"}', [], [1], {}, { type: 'join' },
    { aconfi: '1', type: 'join' }, { aconfi: 2, type: 'join' }, { aconfi: 1 }, { aconfi: 1, type: 7 }]) {
    assert.equal(parseCommand(data), null, JSON.stringify(data));
  }
});

test('ours but wrong is refused, echoing only a harmless command word', () => {
  assert.deepEqual(parseCommand({ aconfi: 1, type: 'self-destruct' }), { error: 'unknown command', command: 'self-destruct' });
  assert.deepEqual(parseCommand({ aconfi: 1, type: '<img src=x onerror=alert(1)>' }), { error: 'unknown command', command: '' });
  assert.equal(parseCommand({ aconfi: 1, type: 'x'.repeat(33) })?.command, '');
  for (const bad of [{ name: 5 }, { name: 'x'.repeat(65) }, { mic: 'off' }, { camera: 0 }, { mic: null }]) {
    const r = parseCommand({ aconfi: 1, type: 'join', ...bad });
    assert.ok(r && 'error' in r && r.command === 'join', JSON.stringify(bad));
  }
});

test('odd objects do not throw', () => {
  const odd = [Object.create(null), new Map([['aconfi', 1]]), new Date(0), /re/, new Uint8Array(4),
    Object.assign(Object.create(null), { aconfi: 1, type: 'join', name: 'Ada' })];
  for (const data of odd) assert.doesNotThrow(() => parseCommand(data));
  assert.deepEqual(parseCommand(odd[5]), { type: 'join', name: 'Ada' });
});
