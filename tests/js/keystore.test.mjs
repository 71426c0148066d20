// The frame worker's receive keys (web/js/e2ee/keystore.js): a receiver
// follows a sender's ratchet by itself, and retires a sender's older
// generations after a grace time, never the newest, however quickly new
// generations follow one another.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEEP_OLD_KEYS_MS, MAX_RATCHET_AHEAD, ReceiveKeys } from '../../web/js/e2ee/keystore.js';
import { kidOf } from '../../web/js/e2ee/session.js';
import { MEDIA_SUITE, decrypt, encrypt, keyContext, ratchet } from '../../web/js/e2ee/sframe.js';

/** Timers that run when the test says. */
class Clock {
  constructor() { this.now = 0; /** @type {{at: number, fn: () => void}[]} */ this.timers = []; }
  /** @param {() => void} fn @param {number} ms */
  setTimeout(fn, ms) { this.timers.push({ at: this.now + ms, fn }); }
  /** @param {number} ms */
  advance(ms) {
    this.now += ms;
    const due = this.timers.filter((t) => t.at <= this.now).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((t) => t.at > this.now);
    for (const t of due) t.fn();
  }
}

const key = (/** @type {number} */ n) => new Uint8Array(32).fill(n);

/** Whether `keys` opens a frame the sender makes with (kid, base). */
async function opens(/** @type {ReceiveKeys} */ keys, /** @type {bigint} */ kid, /** @type {Uint8Array} */ base) {
  const frame = await encrypt(await keyContext(MEDIA_SUITE, kid, base), 0n, new Uint8Array(0), Uint8Array.of(1, 2, 3));
  const ctx = keys.contextFor(kid);
  if (!ctx) return false;
  return decrypt(await ctx, new Uint8Array(0), frame).then(() => true, () => false);
}

test('a receiver follows the ratchet ahead, within bounds, never back', async () => {
  const keys = new ReceiveKeys(new Clock());
  const k0 = key(1);
  keys.add(kidOf(7, 0, 3), k0);
  let k = k0;
  for (let s = 4; s <= 6; s++) k = await ratchet(MEDIA_SUITE, k);
  assert.ok(await opens(keys, kidOf(7, 0, 6), k), 'three steps ahead');
  assert.equal(keys.contextFor(kidOf(7, 0, 2)), null, 'not back');
  assert.equal(keys.contextFor(kidOf(8, 0, 3)), null, 'not another sender\'s');
  assert.equal(keys.contextFor(kidOf(7, 1, 3)), null, 'not another generation');
  // A sender that sent nothing while many joined is still followed, to
  // the end of its generation.
  assert.equal(MAX_RATCHET_AHEAD, 255);
  const far = new ReceiveKeys(new Clock());
  far.add(kidOf(9, 0, 0), k0);
  let kf = k0;
  for (let s = 1; s <= 255; s++) kf = await ratchet(MEDIA_SUITE, kf);
  assert.ok(await opens(far, kidOf(9, 0, 255), kf), '255 steps ahead');
});

test('an older generation replayed changes nothing', async () => {
  const clock = new Clock();
  const keys = new ReceiveKeys(clock);
  keys.add(kidOf(5, 1, 0), key(1));
  keys.add(kidOf(5, 2, 0), key(2));
  keys.add(kidOf(5, 1, 0), key(1));
  clock.advance(KEEP_OLD_KEYS_MS);
  assert.ok(await opens(keys, kidOf(5, 2, 0), key(2)), 'the newest survives');
  assert.equal(keys.contextFor(kidOf(5, 1, 0)), null, 'the replayed one went with the rest');
  // Generations wrap: 0 comes after 65535.
  keys.add(kidOf(6, 0xffff, 0), key(3));
  keys.add(kidOf(6, 0, 0), key(4));
  clock.advance(KEEP_OLD_KEYS_MS);
  assert.ok(await opens(keys, kidOf(6, 0, 0), key(4)));
  assert.equal(keys.contextFor(kidOf(6, 0xffff, 0)), null);
});

test('two new generations in quick succession: the newest stays, the older go after the grace time', async () => {
  const clock = new Clock();
  const keys = new ReceiveKeys(clock);
  keys.add(kidOf(2, 0, 0), key(10));
  keys.add(kidOf(2, 1, 0), key(11));
  clock.advance(1000);
  keys.add(kidOf(2, 2, 0), key(12));
  clock.advance(KEEP_OLD_KEYS_MS - 1000);
  // The timer of generation 1 fired now: generation 2 must survive it.
  assert.ok(await opens(keys, kidOf(2, 2, 0), key(12)), 'the newest generation survives the older timer');
  assert.ok(await opens(keys, kidOf(2, 0, 0), key(10)), 'older ones still open late frames');
  clock.advance(1000);
  assert.ok(await opens(keys, kidOf(2, 2, 0), key(12)));
  assert.equal(keys.contextFor(kidOf(2, 0, 0)), null, 'retired after the grace time');
  assert.equal(keys.contextFor(kidOf(2, 1, 0)), null);
});

test('a sender who left is forgotten after the grace time, others are kept', async () => {
  const clock = new Clock();
  const keys = new ReceiveKeys(clock);
  keys.add(kidOf(3, 0, 0), key(3));
  keys.add(kidOf(4, 0, 0), key(4));
  keys.forget(3);
  assert.ok(await opens(keys, kidOf(3, 0, 0), key(3)), 'late frames still open');
  clock.advance(KEEP_OLD_KEYS_MS);
  assert.equal(keys.contextFor(kidOf(3, 0, 0)), null);
  assert.ok(await opens(keys, kidOf(4, 0, 0), key(4)));
});
