// The key exchange of end-to-end encrypted meetings (web/js/e2ee/session.js)
// over a simulated relay with a manual clock: everyone with the link gets
// everyone's key; a newcomer cannot read what was sent before it came; a
// leaver cannot read what is sent after the next key; a wrong link gets no
// key and is told; nothing relayed carries a secret or a key in the clear;
// chat is sealed, private chat only opens for its recipient.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64Url, toBase64Url } from '../../web/js/e2ee/link.js';
import {
  ANSWER_WAIT_MS, DELIVERY_BATCH_MS, KeySession, ROTATE_AFTER_LEAVE_MS, SWITCH_DELAY_MS, kidOf, splitKid,
} from '../../web/js/e2ee/session.js';
import { MEDIA_SUITE, decrypt, encrypt, keyContext } from '../../web/js/e2ee/sframe.js';
import { hostileSplit } from './hostile-relay.mjs';

globalThis.ACONFI_TEST_HOOKS = true;
const ROOM = 'kelomari-tusefopa-bidanuve';
const SECRET = fromBase64Url('q2Xk0mVw9rT4yB1nC8eLpA');
const OTHER_SECRET = fromBase64Url('Zz9yXw8vUu7tSs6rQq5pOo');
const utf8 = new TextEncoder();
/** @param {Uint8Array} b */
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

/** Timers that run only when the test moves the clock. */
class Clock {
  constructor() { this.now = 0; this.id = 0; /** @type {Map<number, {at: number, fn: () => void}>} */ this.timers = new Map(); }
  /** @param {() => void} fn @param {number} ms */
  setTimeout(fn, ms) { this.id += 1; this.timers.set(this.id, { at: this.now + ms, fn }); return this.id; }
  /** @param {number} id */
  clearTimeout(id) { this.timers.delete(id); }
}

/** A room on a relay that behaves like the server: in order, to one or all others. */
class Relay {
  constructor() {
    this.clock = new Clock();
    /** @type {Map<number, Member>} */
    this.members = new Map();
    this.nextPid = 1;
    /** @type {{from: number, to: number|null, data: string}[]} */
    this.inFlight = [];
    /** @type {string[]} every relayed message, as the server saw it */
    this.seen = [];
    /** @type {Member[]} gone from the room, but a colluding server still shows them everything */
    this.spies = [];
    /** Messages the relay holds back while `hold` says so. @type {(from: number, to: number) => boolean} */
    this.hold = () => false;
    /** @type {{from: number, to: number, data: string}[]} */
    this.held = [];
  }

  /** Delivers what was held back. */
  async release() {
    this.hold = () => false;
    for (const { from, to, data } of this.held.splice(0)) this.members.get(to)?.session.handle(from, data);
    await this.settle();
  }

  /** @param {Uint8Array} secret */
  async join(secret) {
    const pid = this.nextPid++;
    const present = [...this.members.keys()];
    const m = new Member(this, pid, secret);
    this.members.set(pid, m);
    for (const other of this.members.values()) if (other !== m) other.session.joined(pid);
    m.session.start(pid, present);
    await this.settle();
    return m;
  }

  /** @param {Member} m @param {{colluding?: boolean}} [opts] the server keeps feeding the leaver every message */
  async leave(m, opts = {}) {
    this.members.delete(m.pid);
    await m.session.stop();
    if (opts.colluding) this.spies.push(m);
    for (const other of this.members.values()) other.session.left(m.pid);
    await this.settle();
  }

  /** Delivers until nothing is in flight and every session is idle. */
  async settle() {
    for (;;) {
      await Promise.all([...this.members.values(), ...this.spies].map((m) => m.session.queue));
      const batch = this.inFlight.splice(0);
      if (batch.length === 0) return;
      for (const { from, to, data } of batch) {
        for (const [pid, m] of this.members) {
          if (pid === from || (to !== null && to !== pid)) continue;
          if (this.hold(from, pid)) this.held.push({ from, to: pid, data });
          else m.session.handle(from, data);
        }
        for (const spy of this.spies) if (spy.pid !== from) spy.session.handle(from, data);
      }
    }
  }

  /** Moves the clock, running what falls due, in order. @param {number} ms */
  async advance(ms) {
    const end = this.clock.now + ms;
    for (;;) {
      const due = [...this.clock.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.clock.timers.delete(due[0]);
      this.clock.now = due[1].at;
      due[1].fn();
      await this.settle();
    }
    this.clock.now = end;
    await this.settle();
  }
}

class Member {
  /** @param {Relay} relay @param {number} pid @param {Uint8Array} secret */
  constructor(relay, pid, secret) {
    this.pid = pid;
    /** @type {{kid: bigint, key: Uint8Array}|null} what our sender transform would use */
    this.sending = null;
    /** @type {{kid: bigint, key: Uint8Array}[]} every key our sender transform was given */
    this.sent = [];
    /** @type {Map<bigint, Uint8Array>} keys handed to our receive transform */
    this.receiving = new Map();
    /** @type {{kid: bigint, key: Uint8Array}[]} every key handed to it, in order */
    this.receivedLog = [];
    this.mismatch = false;
    /** @type {number[]} whose link we told the server checked out */
    this.confirmed = [];
    this.session = new KeySession({
      secret,
      room: ROOM,
      timers: relay.clock,
      sink: {
        send: (to, data) => { relay.inFlight.push({ from: pid, to, data }); relay.seen.push(data); },
        sendKey: (kid, key) => { this.sending = { kid, key }; this.sent.push({ kid, key }); },
        receiveKey: (_from, kid, key) => { this.receiving.set(kid, key); this.receivedLog.push({ kid, key }); },
        forget: () => {},
        change: () => {},
        mismatch: () => { this.mismatch = true; },
        authentic: (id) => { this.confirmed.push(id); },
      },
    });
  }
}

/** A meeting of `n` with the same link, keys delivered. */
async function meeting(n) {
  const relay = new Relay();
  const members = [];
  for (let i = 0; i < n; i++) members.push(await relay.join(SECRET));
  await relay.advance(DELIVERY_BATCH_MS);
  return { relay, members };
}

/** The text a sealed chat message opened to, or null. @param {import('../../web/js/e2ee/session.js').Opened} o */
const textOf = (o) => ('text' in o ? o.text : null);

/** Whether `receiver` can decrypt a frame `sender` sends now. @param {Member} sender @param {Member} receiver */
async function canRead(sender, receiver) {
  const { kid, key } = /** @type {{kid: bigint, key: Uint8Array}} */ (sender.sending);
  const frame = await encrypt(await keyContext(MEDIA_SUITE, kid, key), 1n, Uint8Array.of(0x90), utf8.encode('a frame'));
  const theirs = await receiver.session.receivedKey(kid);
  if (!theirs) return false;
  return decrypt(await keyContext(MEDIA_SUITE, kid, theirs), Uint8Array.of(0x90), frame).then(() => true, () => false);
}

test('everyone with the link verifies everyone, gets their keys and sees the same safety code', async () => {
  const { members } = await meeting(3);
  for (const a of members) {
    for (const b of members) {
      if (a === b) continue;
      assert.deepEqual(a.session.peerState(b.pid), { status: 'authentic', hasKey: true, compared: null }, `${a.pid} about ${b.pid}`);
      assert.ok(await canRead(b, a), `${a.pid} reads ${b.pid}`);
    }
    assert.equal(splitKid(/** @type {any} */ (a.sending).kid).pid, a.pid, 'a KID names its sender');
    // The server is told whose link checked out, once each.
    assert.deepEqual([...a.confirmed].sort(), members.filter((m) => m !== a).map((m) => m.pid).sort());
  }
  const codes = new Set(members.map((m) => m.session.code));
  assert.equal(codes.size, 1);
  // 20 digits (over 66 bits), in groups people can read aloud.
  assert.match([...codes][0], /^\d{5} \d{5} \d{5} \d{5}$/);
});

test('a newcomer gets keys one ratchet step on, and cannot go back to what was sent before it came', async () => {
  const { relay, members: [a, b] } = await meeting(2);
  const before = /** @type {{kid: bigint, key: Uint8Array}} */ (a.sending);
  const d = await relay.join(SECRET);
  await relay.advance(DELIVERY_BATCH_MS);
  const after = /** @type {{kid: bigint, key: Uint8Array}} */ (a.sending);
  assert.equal(splitKid(after.kid).step, splitKid(before.kid).step + 1, 'a ratcheted when d came');
  assert.ok(await canRead(a, d) && await canRead(a, b), 'd and b read what a sends now');
  // b follows the ratchet by itself; d holds nothing from before it came.
  assert.equal(await d.session.receivedKey(before.kid), null);
  assert.ok(![...d.receiving.values()].some((k) => hex(k) === hex(before.key)));
  assert.ok(d.session.code === a.session.code && a.session.code === b.session.code, 'one code for three');
});

test('after a leave everyone switches to new keys the leaver cannot get, even from a colluding server', async () => {
  const { relay, members: [a, b, c] } = await meeting(3);
  const oldGen = splitKid(/** @type {any} */ (a.sending).kid).gen;
  await relay.leave(c, { colluding: true });
  await relay.advance(ROTATE_AFTER_LEAVE_MS - 1);
  assert.equal(splitKid(/** @type {any} */ (a.sending).kid).gen, oldGen, 'not before the batching window ends');
  await relay.advance(1);
  assert.equal(splitKid(/** @type {any} */ (a.sending).kid).gen, oldGen, 'the new key is sent out first...');
  assert.ok(b.receiving.has(kidOf(a.pid, oldGen + 1, 0)), '...and b has it before a uses it');
  await relay.advance(SWITCH_DELAY_MS);
  const now = /** @type {{kid: bigint, key: Uint8Array}} */ (a.sending);
  assert.equal(splitKid(now.kid).gen, oldGen + 1);
  assert.ok(await canRead(a, b) && await canRead(b, a), 'the rest read each other');
  // Frames sent now do not decrypt with any key the leaver holds, though
  // it saw every message sent since.
  assert.ok(!(await canRead(a, c)) && !(await canRead(b, c)));
  const leaverKeys = c.session.exportKeys();
  const frame = await encrypt(await keyContext(MEDIA_SUITE, now.kid, now.key), 0n, new Uint8Array(0), utf8.encode('after'));
  for (const k of leaverKeys.received) {
    const ctx = await keyContext(MEDIA_SUITE, now.kid, Uint8Array.from(Buffer.from(k.key, 'hex')));
    await assert.rejects(decrypt(ctx, new Uint8Array(0), frame));
  }
  assert.ok(!leaverKeys.received.some((k) => k.key === hex(now.key)));
});

test('leaves close together share one new key', async () => {
  const { relay, members: [a, , c, d] } = await meeting(4);
  const gen = splitKid(/** @type {any} */ (a.sending).kid).gen;
  await relay.leave(c);
  await relay.advance(ROTATE_AFTER_LEAVE_MS / 2);
  await relay.leave(d);
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS);
  assert.equal(splitKid(/** @type {any} */ (a.sending).kid).gen, gen + 1);
});

test('a wrong link gets no key, is told, and is marked by the others', async () => {
  const { relay, members } = await meeting(3);
  const e = await relay.join(OTHER_SECRET);
  await relay.advance(DELIVERY_BATCH_MS * 2);
  assert.equal(e.mismatch, true, 'the joiner learns its key is not this meeting\'s');
  assert.equal(e.receiving.size, 0, 'and holds no key of anyone');
  for (const m of members) {
    assert.ok(!m.confirmed.includes(e.pid), 'a wrong link is confirmed to the server by nobody');
    assert.equal(m.session.peerState(e.pid).status, 'failed');
    assert.equal(m.mismatch, false);
    assert.ok(!(await canRead(m, e)));
  }
  // No key message carried anything for e.
  for (const data of relay.seen) {
    const msg = JSON.parse(data);
    if (msg.t === 'keys') for (const k of msg.keys) assert.ok(!(String(e.pid) in k.to));
  }
});

test('a participant who never answers does not keep a wrong link waiting, nor mislead a right one', async () => {
  const { relay, members: [a] } = await meeting(1);
  // A silent participant (it joined, but never announces).
  const silent = relay.nextPid++;
  a.session.joined(silent);
  relay.members.set(silent, /** @type {any} */ ({ pid: silent, session: { handle() {}, joined() {}, left() {}, queue: Promise.resolve() } }));
  await relay.settle();
  const wrong = await relay.join(OTHER_SECRET);
  assert.equal(wrong.mismatch, false, 'not while the silent one might still answer');
  await relay.advance(ANSWER_WAIT_MS);
  assert.equal(wrong.mismatch, true, 'told after the wait');
  const right = await relay.join(SECRET);
  await relay.advance(ANSWER_WAIT_MS + DELIVERY_BATCH_MS);
  assert.equal(right.mismatch, false, 'one verified peer is enough');
  assert.ok(await canRead(a, right));
});

test('nothing relayed carries the link secret or a media key in the clear', async () => {
  const { relay, members } = await meeting(3);
  await relay.leave(members[2]);
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS);
  const secrets = [toBase64Url(SECRET), hex(SECRET)];
  for (const m of members) {
    const k = m.session.exportKeys();
    for (const key of [k.sending.key, ...k.received.map((r) => r.key)]) secrets.push(key, toBase64Url(Uint8Array.from(Buffer.from(key, 'hex'))));
  }
  assert.ok(relay.seen.length > 5);
  for (const data of relay.seen) for (const s of secrets) assert.ok(!data.includes(s), 'a secret in a relayed message');
});

test('chat is sealed: everyone with the key opens it, a private message only its recipient', async () => {
  const { relay, members: [a, b, c] } = await meeting(3);
  const sealed = await a.session.sealChat('the numbers are up');
  assert.ok(!sealed.includes('numbers'));
  for (const m of [b, c]) assert.equal(textOf(await m.session.openChat(a.pid, sealed, false)), 'the numbers are up');
  const priv = await a.session.sealChat('just for b', b.pid);
  assert.equal(textOf(await b.session.openChat(a.pid, priv, true)), 'just for b');
  assert.equal(textOf(await c.session.openChat(a.pid, priv, true)), null, 'c cannot open what the server might misroute');
  // Someone else's name on it, or a bit changed, and it does not open.
  assert.equal(textOf(await c.session.openChat(b.pid, sealed, false)), null);
  assert.equal(textOf(await b.session.openChat(a.pid, `${sealed.slice(0, -2)}AA`, false)), null);
  // After c left and keys changed, c cannot read the chat that follows.
  const keysOfC = c.session;
  await relay.leave(c, { colluding: true });
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS);
  const later = await a.session.sealChat('after c left');
  assert.equal(textOf(await b.session.openChat(a.pid, later, false)), 'after c left');
  assert.equal(textOf(await keysOfC.openChat(a.pid, later, false)), null);
});

test('forged or damaged key exchange is ignored', async () => {
  const { relay, members: [a, b] } = await meeting(2);
  const held = b.receiving.size;
  // A key message for b, damaged in transit.
  const real = relay.seen.find((d) => JSON.parse(d).t === 'keys' && String(b.pid) in JSON.parse(d).keys[0].to);
  const msg = JSON.parse(/** @type {string} */ (real));
  const w = msg.keys[0].to[String(b.pid)];
  msg.keys[0].to[String(b.pid)] = `${w.slice(0, 20)}${w[20] === 'A' ? 'B' : 'A'}${w.slice(21)}`;
  await b.session.handle(a.pid, JSON.stringify(msg));
  // A key claiming to be someone else's.
  msg.keys[0].kid = String(kidOf(99, 0, 0));
  await b.session.handle(a.pid, JSON.stringify(msg));
  await b.session.handle(a.pid, 'not json');
  await b.session.handle(a.pid, JSON.stringify({ t: 'keys', keys: [{ kid: '1e99', to: {} }] }));
  assert.equal(b.receiving.size, held);
  assert.ok(await canRead(a, b), 'the real keys still work');
});

test('a hostile participant cannot make a rightful joiner believe its link is wrong', async () => {
  const { relay, members: [honest] } = await meeting(1);
  // A participant without the link that answers newcomers with garbage.
  const hostile = relay.nextPid++;
  honest.session.joined(hostile);
  relay.members.set(hostile, /** @type {any} */ ({
    pid: hostile,
    session: {
      left() {}, joined() {}, queue: Promise.resolve(),
      handle(/** @type {number} */ from, /** @type {string} */ data) {
        const m = JSON.parse(data);
        if (m.t === 'hello') relay.inFlight.push({ from: hostile, to: from, data: JSON.stringify({ t: 'announce', pub: 'AAAA', nonce: 'AAAA', echo: m.nonce, mac: 'AAAA' }) });
      },
    },
  }));
  await relay.settle();
  const n = await relay.join(SECRET);
  await relay.advance(DELIVERY_BATCH_MS);
  assert.equal(n.session.peerState(hostile).status, 'failed');
  assert.equal(n.session.peerState(honest.pid).status, 'authentic');
  await relay.leave(honest);
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS);
  assert.equal(n.mismatch, false, 'once anyone\'s link checked out, never "wrong link"');
});

test('a stopped session does nothing more: no timer fires, nothing queued runs', async () => {
  const { relay, members: [a, b] } = await meeting(2);
  const sentBefore = relay.seen.length;
  const keyBefore = a.sending;
  a.session.left(b.pid);
  a.session.stop();
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS + ANSWER_WAIT_MS);
  assert.equal(relay.seen.length, sentBefore, 'no new key sent');
  assert.equal(a.sending, keyBefore, 'no switch');
});

test('running out of ratchet steps while a new key waits keeps one key per KID', async () => {
  const { relay, members: [a, b, c] } = await meeting(3);
  a.session.step = 255;
  await relay.leave(c);
  await relay.advance(ROTATE_AFTER_LEAVE_MS);
  assert.ok(a.session.next, 'a new generation waits to be used');
  const d = await relay.join(SECRET);
  await relay.advance(DELIVERY_BATCH_MS * 2);
  await relay.advance(SWITCH_DELAY_MS + DELIVERY_BATCH_MS);
  /** @type {Map<bigint, string>} */
  const byKid = new Map();
  for (const { kid, key } of a.sent) {
    assert.ok(!byKid.has(kid) || byKid.get(kid) === hex(key), `KID ${kid} names two keys`);
    byKid.set(kid, hex(key));
  }
  for (const m of [b, d]) {
    for (const { kid, key } of m.receivedLog) {
      if (splitKid(kid).pid !== a.pid) continue;
      assert.ok(!byKid.has(kid) || byKid.get(kid) === hex(key), `KID ${kid} named two keys at ${m.pid}`);
      byKid.set(kid, hex(key));
    }
    assert.ok(await canRead(a, m), `${m.pid} reads a after the rollover`);
  }
});

// ---- a server that holds the link (tests/js/hostile-relay.mjs) ----

test('a relay that holds the link and swaps keys, in any order it likes, never makes the two codes match', async () => {
  const runs = 40;
  for (let seed = 1; seed <= runs; seed++) {
    const split = await hostileSplit({ seed, secret: SECRET, room: ROOM });
    assert.ok(split.a.code && split.n.code, `seed ${seed}: both were shown a code`);
    // The attack is real: each decrypts the other through the relay's keys.
    assert.ok(await split.nReadsA(), `seed ${seed}: n reads a through the relay`);
    assert.notEqual(split.a.code, split.n.code, `seed ${seed}: the codes matched`);
    // Neither side's code is predictable from what the relay fixed first:
    // its own two sessions, one on each side, show codes that differ too.
    assert.notEqual(split.a.code, split.fakeA.code);
  }
});

test('a relay cannot run round after round for a new guess: one round per change in who is here', async () => {
  const split = await hostileSplit({ seed: 7, secret: SECRET, room: ROOM });
  const before = split.commitsBy(split.n);
  // n's round is done: a new one for the same people is a forgery.
  for (let i = 0; i < 10; i++) await split.forgeRound();
  assert.equal(split.commitsBy(split.n), before, 'ten forged rounds: n takes part in none');
  // Someone joining (which everyone sees) allows one more, and one only.
  split.n.joined(99);
  await split.settle();
  await split.forgeRound();
  await split.forgeRound();
  assert.equal(split.commitsBy(split.n) - before, 1);
});

test('a repeated join, or a second key under a known id, changes nothing', async () => {
  const { relay, members: [a, b] } = await meeting(2);
  const code = a.session.code;
  a.session.joined(b.pid);
  await relay.settle();
  assert.deepEqual(a.session.peerState(b.pid), { status: 'authentic', hasKey: true, compared: null });
  // The server holds the link: it can make a valid hello with a key of its
  // own for b's id. It is not taken.
  const forger = new KeySession({ secret: SECRET, room: ROOM, timers: relay.clock, sink: quietSink() });
  /** @type {string[]} */
  const sent = [];
  forger.sink.send = (_to, data) => sent.push(data);
  await forger.start(b.pid, []);
  const hello = /** @type {string} */ (sent.find((d) => JSON.parse(d).t === 'hello'));
  await a.session.handle(b.pid, hello);
  await relay.advance(DELIVERY_BATCH_MS);
  assert.ok(await canRead(b, a) && await canRead(a, b), 'a and b still share their keys');
  const priv = await b.session.sealChat('still you', a.pid);
  assert.equal(textOf(await a.session.openChat(b.pid, priv, true)), 'still you', 'and their pairwise key');
  assert.equal(a.session.code, code, 'the code stayed');
});

test('someone who left cannot come back under the same id, nor an old answer be replayed to a newcomer', async () => {
  const { relay, members: [a, b, c] } = await meeting(3);
  const oldHello = /** @type {string} */ (relay.seen.find((d) => JSON.parse(d).t === 'hello' && JSON.parse(d).pub === c.session.pubText));
  await relay.leave(c, { colluding: true });
  a.session.joined(c.pid);
  await a.session.handle(c.pid, oldHello);
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS);
  assert.equal(a.session.peerState(c.pid).status, 'pending', 'the leader\'s id stays gone');
  assert.ok(!(await canRead(a, c)), 'and it gets no new key');
  // a's answer to b's join, replayed to a newcomer d, is not taken: it
  // was made for another join.
  const answerToB = /** @type {string} */ (relay.seen.find((d) => { const m = JSON.parse(d); return m.t === 'announce' && m.pub === a.session.pubText; }));
  /** @type {string[]} */
  const heard = [];
  const d = new KeySession({ secret: SECRET, room: ROOM, timers: relay.clock, sink: { ...quietSink(), send: (_t, x) => heard.push(x) } });
  await d.start(50, [a.pid]);
  await d.handle(a.pid, answerToB);
  assert.equal(d.peerState(a.pid).status, 'pending');
});

test('an old key message replayed does not push out a newer key', async () => {
  const { relay, members: [a, b, c, d] } = await meeting(4);
  const firstKeys = relay.seen.filter((x) => { const m = JSON.parse(x); return m.t === 'keys' && m.keys.some((/** @type {any} */ k) => splitKid(BigInt(k.kid)).pid === a.pid && String(b.pid) in k.to); });
  await relay.leave(c);
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS + 10);
  await relay.leave(d);
  await relay.advance(ROTATE_AFTER_LEAVE_MS + SWITCH_DELAY_MS + 10);
  const gen = splitKid(/** @type {any} */ (a.sending).kid).gen;
  assert.equal(gen, 2);
  const previous = kidOf(a.pid, 1, 0);
  assert.ok(await b.session.receivedKey(previous), 'b keeps a\'s previous generation for late frames');
  const logged = b.receivedLog.length;
  for (const old of firstKeys) await b.session.handle(a.pid, old);
  assert.equal(b.receivedLog.length, logged, 'no old key reached the frame worker');
  assert.ok(await b.session.receivedKey(previous), 'a replayed generation 0 did not push out generation 1');
  assert.equal(await b.session.receivedKey(kidOf(a.pid, 0, 0)), null, 'nor came back itself');
  assert.ok(await canRead(a, b));
});

test('chat replayed or delivered out of order is told apart and not shown twice', async () => {
  const { members: [a, b] } = await meeting(2);
  const one = await a.session.sealChat('one');
  const two = await a.session.sealChat('two');
  assert.deepEqual(await b.session.openChat(a.pid, two, false), { text: 'two' });
  assert.deepEqual(await b.session.openChat(a.pid, one, false), { replayed: true }, 'an older one after a newer');
  assert.deepEqual(await b.session.openChat(a.pid, two, false), { replayed: true }, 'the same one again');
  const priv = await a.session.sealChat('just you', b.pid);
  assert.deepEqual(await b.session.openChat(a.pid, priv, true), { text: 'just you' });
  assert.deepEqual(await b.session.openChat(a.pid, priv, true), { replayed: true });
  // The number is covered by the tag: changing it breaks the message.
  const bumped = priv.replace(/^p(\d+)\./, (_, n) => `p${Number(n) + 5}.`);
  assert.deepEqual(await b.session.openChat(a.pid, bumped, true), { failed: true });
});

test('comparing the code marks whom it covers; a newcomer is not covered; "they differ" stays', async () => {
  const { relay, members: [a, b] } = await meeting(2);
  assert.equal(await a.session.compare('00000 00000 00000 00000', 'match'), false, 'not the code shown');
  assert.equal(await a.session.compare(a.session.code, 'match'), true);
  assert.equal(a.session.peerState(b.pid).compared, 'match');
  const c = await relay.join(SECRET);
  await relay.advance(DELIVERY_BATCH_MS);
  assert.ok(a.session.code && a.session.code === c.session.code && b.session.code === c.session.code, 'one new code for three');
  assert.equal(a.session.peerState(c.pid).compared, null, 'the newcomer was not in the code compared');
  assert.equal(a.session.peerState(b.pid).compared, 'match', 'b\'s key did not change');
  await a.session.compare(a.session.code, 'differ');
  await relay.leave(c);
  await a.session.compare(a.session.code, 'match');
  assert.equal(a.session.peerState(b.pid).compared, 'differ', 'a "they differ" is not undone');
});

/** A sink that does nothing. @returns {import('../../web/js/e2ee/session.js').Sink} */
function quietSink() {
  return { send() {}, sendKey() {}, receiveKey() {}, forget() {}, change() {}, mismatch() {} };
}
