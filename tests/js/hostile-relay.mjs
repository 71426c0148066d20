// A hostile server in the middle of an end-to-end encrypted meeting, for
// the key exchange's tests: it holds the meeting link (the strongest
// attacker of docs/e2ee.md), and splits participant a (there first) from
// participant n (joining). Each sees a session of the relay's in place of
// the other, with a key pair of the relay's; a's media keys are passed on
// to n (and n's to a) under the relay's own pairwise keys, so media flows
// and the relay reads all of it — unless the two compare their safety
// codes. Messages are delivered in an order a seeded random choice picks.

import { KeySession } from '../../web/js/e2ee/session.js';
import { MEDIA_SUITE, decrypt, encrypt, keyContext } from '../../web/js/e2ee/sframe.js';
import { toBase64Url } from '../../web/js/e2ee/link.js';

const A = 1;
const N = 2;

/** A small seeded generator (mulberry32). @param {number} seed */
function rng(seed) {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let x = Math.imul(t ^ (t >>> 15), 1 | t);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Timers that run only when the relay moves the clock. */
class Clock {
  constructor() { this.now = 0; this.id = 0; /** @type {Map<number, {at: number, fn: () => void}>} */ this.timers = new Map(); }
  /** @param {() => void} fn @param {number} ms */
  setTimeout(fn, ms) { this.id += 1; this.timers.set(this.id, { at: this.now + ms, fn }); return this.id; }
  /** @param {number} id */
  clearTimeout(id) { this.timers.delete(id); }
}

/** The relay's stand-in for a participant: it sends no key of its own, only what it passes on. */
class StandIn extends KeySession {
  async deliver() {}
  async rotate() {}
}

/**
 * @param {{seed: number, secret: Uint8Array, room: string}} opts
 */
export async function hostileSplit({ seed, secret, room }) {
  const clock = new Clock();
  const random = rng(seed);
  /** @type {{to: KeySession, from: number, data: string}[]} */
  const queue = [];
  /** @type {Map<KeySession, number>} commit messages each session sent */
  const commits = new Map();
  /** @type {Map<KeySession, {kid: bigint, key: Uint8Array}>} */
  const sending = new Map();

  /**
   * @param {number} pid @param {() => KeySession} peerOf where what it sends goes
   * @param {(from: number, kid: bigint, key: Uint8Array) => void} [onKey]
   * @param {typeof KeySession} [Kind]
   */
  const session = (pid, peerOf, onKey = () => {}, Kind = KeySession) => {
    /** @type {KeySession} */
    const s = new Kind({
      secret, room, timers: clock,
      sink: {
        send: (_to, data) => {
          if (JSON.parse(data).t === 'commit') commits.set(s, (commits.get(s) ?? 0) + 1);
          queue.push({ to: peerOf(), from: pid, data });
        },
        sendKey: (kid, key) => sending.set(s, { kid, key }),
        receiveKey: onKey,
        forget() {}, change() {}, mismatch() {},
      },
    });
    return s;
  };

  /** @type {KeySession} */ let a;
  /** @type {KeySession} */ let n;
  /** @type {KeySession} */ let fakeA;
  /** @type {KeySession} */ let fakeN;
  // What a sends reaches the relay's n, and the other way round; a's keys
  // that the relay's n receives are passed on to the real n by the relay's
  // a (same KIDs), and n's to a.
  a = session(A, () => fakeN);
  n = session(N, () => fakeA);
  /** @type {{via: () => KeySession, to: number, kid: bigint, key: Uint8Array}[]} keys to pass on once the stand-in can */
  const toPass = [];
  fakeN = session(N, () => a, (_f, kid, key) => toPass.push({ via: () => fakeA, to: N, kid, key }), StandIn);
  fakeA = session(A, () => n, (_f, kid, key) => toPass.push({ via: () => fakeN, to: A, kid, key }), StandIn);
  /** Passes on the keys whose stand-in now holds a pairwise key with their receiver. */
  const pass = () => {
    for (let i = toPass.length - 1; i >= 0; i--) {
      const { via, to, kid, key } = toPass[i];
      if (via().peerState(to).status !== 'authentic') continue;
      toPass.splice(i, 1);
      via().run(() => via().sendKeys([to], [{ kid, key }]));
    }
  };

  const sessions = () => [a, n, fakeA, fakeN];
  /** Until no session has work left, including work one queued on another. */
  const idle = async () => {
    for (;;) {
      const queues = sessions().map((s) => s.queue);
      await Promise.all(queues);
      if (sessions().every((s, i) => s.queue === queues[i])) return;
    }
  };

  /** Delivers everything, in an order the seed picks, running timers as they fall due. */
  const run = async (/** @type {boolean} */ shuffle) => {
    for (let i = 0; i < 10000; i++) {
      await idle();
      pass();
      await idle();
      if (queue.length > 0 && (!shuffle || random() < 0.9 || clock.timers.size === 0)) {
        const at = shuffle ? Math.floor(random() * queue.length) : 0;
        const [{ to, from, data }] = queue.splice(at, 1);
        to.handle(from, data);
        continue;
      }
      const due = [...clock.timers].sort((x, y) => x[1].at - y[1].at)[0];
      if (!due) return;
      clock.timers.delete(due[0]);
      clock.now = due[1].at;
      due[1].fn();
    }
    throw new Error('the relay never settled');
  };

  a.start(A, []);
  fakeA.start(A, []);
  await run(true);
  // n joins: both a and the relay's a (there "already") are told; the
  // relay's n and the real n start as joiners.
  a.joined(N);
  fakeA.joined(N);
  fakeN.start(N, [A]);
  n.start(N, [A]);
  await run(true);

  return {
    a, n, fakeA, fakeN,
    /** Whether n decrypts a frame a sends now. */
    async nReadsA() {
      const mine = sending.get(a);
      if (!mine) return false;
      const frame = await encrypt(await keyContext(MEDIA_SUITE, mine.kid, mine.key), 1n, new Uint8Array(0), new TextEncoder().encode('frame'));
      const theirs = await n.receivedKey(mine.kid);
      if (!theirs) return false;
      return decrypt(await keyContext(MEDIA_SUITE, mine.kid, theirs), new Uint8Array(0), frame).then(() => true, () => false);
    },
    /** @param {KeySession} s */
    commitsBy: (s) => commits.get(s) ?? 0,
    /** The relay, as n's leader, opens a new round for n's roster with a commitment of no value. */
    async forgeRound() {
      const data = JSON.stringify({ t: 'commit', r: toBase64Url(crypto.getRandomValues(new Uint8Array(16))), roster: `${A},${N}`, c: 'x'.repeat(43) });
      queue.push({ to: n, from: A, data });
      await run(false);
    },
    settle: () => run(false),
  };
}
