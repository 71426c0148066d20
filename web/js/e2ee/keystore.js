// Sender keys as receivers hold them. The layout of a KID, and the walk
// along a sender's ratchet to the key a KID names (used for frames here and
// for chat by session.js). Then the keys a receiver decrypts frames with:
// per sender, the base keys it was given, the ratchet steps it follows by
// itself, and the retirement of a sender's older generations once a newer
// one is in, after a grace time for late frames. Used by the frame worker.
// Timers come from outside. No DOM here.

import { MEDIA_SUITE, keyContext, ratchet } from './sframe.js';

/** Keys of a generation a sender has moved on from stay this long. */
export const KEEP_OLD_KEYS_MS = 5000;
/**
 * Ratchet steps a receiver follows by itself to reach a frame's key: a
 * whole generation (a sender that sent nothing while many joined must not
 * become undecodable; the derived keys are kept).
 */
export const MAX_RATCHET_AHEAD = 255;

// A KID is the sender's participant id, its key generation and the ratchet
// step (RFC 9605, 5.1, with R = 8): pid << 24 | generation << 8 | step.
const STEP_BITS = 8n;
const GEN_BITS = 16n;
/** The last ratchet step of a generation. */
export const MAX_STEP = 255;
/** Generations wrap at 2^16. */
export const GEN_MASK = 0xffff;

/** @param {number} pid @param {number} gen @param {number} step */
export const kidOf = (pid, gen, step) => (BigInt(pid) << (GEN_BITS + STEP_BITS)) | (BigInt(gen) << STEP_BITS) | BigInt(step);
/** @param {bigint} kid */
export const splitKid = (kid) => ({
  pid: Number(kid >> (GEN_BITS + STEP_BITS)),
  gen: Number((kid >> STEP_BITS) & BigInt(GEN_MASK)),
  step: Number(kid & BigInt(MAX_STEP)),
});
/** @param {bigint} kid @param {number} step */
const withStep = (kid, step) => (kid & ~BigInt(MAX_STEP)) | BigInt(step);

/**
 * The base key `kid` names: held, or reached by following the sender's
 * ratchet from the latest earlier step of its generation held within
 * `maxAhead` steps (the steps passed are added to `bases`). Null, at once,
 * if there is none.
 * @param {Map<bigint, Uint8Array>} bases @param {bigint} kid @param {number} maxAhead
 * @returns {Promise<Uint8Array>|null}
 */
export function baseFor(bases, kid, maxAhead) {
  const step = splitKid(kid).step;
  for (let s = step; s >= Math.max(0, step - maxAhead); s--) {
    const base = bases.get(withStep(kid, s));
    if (!base) continue;
    return (async () => {
      let k = base;
      for (let t = s + 1; t <= step; t++) {
        k = await ratchet(MEDIA_SUITE, k);
        bases.set(withStep(kid, t), k);
      }
      return k;
    })();
  }
  return null;
}
/** Generation `a` is after `b` (they wrap at 2^16). @param {number} a @param {number} b */
const after = (a, b) => { const d = (a - b) & GEN_MASK; return d > 0 && d <= GEN_MASK >> 1; };

/**
 * @typedef {{setTimeout: (fn: () => void, ms: number) => unknown}} Timers
 * @typedef {import('./sframe.js').KeyContext} KeyContext
 */

export class ReceiveKeys {
  /** @param {Timers} [timers] */
  constructor(timers) {
    this.timers = /** @type {Timers} */ (timers ?? globalThis);
    /** Base keys, by KID. @type {Map<bigint, Uint8Array>} */
    this.bases = new Map();
    /** Derived contexts, by KID. @type {Map<bigint, Promise<KeyContext>>} */
    this.contexts = new Map();
    /** The generation of each sender's newest key. @type {Map<number, number>} */
    this.newest = new Map();
  }

  /** A sender's key (a new generation, or the step we start from). @param {bigint} kid @param {Uint8Array} key */
  add(kid, key) {
    const { pid, gen } = splitKid(kid);
    const newest = this.newest.get(pid);
    // An older generation again (a replay) changes nothing.
    if (newest !== undefined && newest !== gen && !after(gen, newest)) return;
    this.bases.set(kid, key);
    this.contexts.delete(kid);
    this.newest.set(pid, gen);
    // Older generations go once late frames are through, unless a newer
    // generation came meanwhile (its own timer takes over then).
    this.timers.setTimeout(() => {
      if (this.newest.get(pid) !== gen) return;
      for (const k of [...this.bases.keys()]) {
        const other = splitKid(k);
        if (other.pid === pid && other.gen !== gen) this.drop(k);
      }
    }, KEEP_OLD_KEYS_MS);
  }

  /** A sender left: its keys go once its last frames are through. @param {number} pid */
  forget(pid) {
    this.timers.setTimeout(() => {
      for (const k of [...this.bases.keys()]) if (splitKid(k).pid === pid) this.drop(k);
      this.newest.delete(pid);
    }, KEEP_OLD_KEYS_MS);
  }

  /** @param {bigint} kid */
  drop(kid) {
    this.bases.delete(kid);
    this.contexts.delete(kid);
  }

  /**
   * The context for `kid`, following the sender's ratchet from a key of
   * the same generation we hold; null if there is none.
   * @param {bigint} kid
   * @returns {Promise<KeyContext>|null}
   */
  contextFor(kid) {
    const ctx = this.contexts.get(kid);
    if (ctx) return ctx;
    const base = baseFor(this.bases, kid, MAX_RATCHET_AHEAD);
    if (!base) return null;
    const derived = base.then((k) => keyContext(MEDIA_SUITE, kid, k));
    this.contexts.set(kid, derived);
    return derived;
  }
}
