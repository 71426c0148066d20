// The safety code of an end-to-end encrypted meeting: a number everyone
// reads aloud, which a server in the middle (one that holds the link and
// shows each side keys of its own) cannot make match.
//
// Each roster (oneself and every peer whose link checked out, with the
// public keys as we received them) runs a round of commit-then-reveal, as
// ZRTP's hash commitment does for two: everyone commits to a fresh random
// nonce bound to its id and key, reveals the nonce only once it holds a
// commitment from everyone in the roster, and the code is a hash of the
// roster, every key and every nonce. A server substituting keys must fix
// what it shows us before it sees our nonce, so it cannot search for keys
// that make two participants' codes agree: it gets one guess per round,
// and rounds come only with visible changes in who is there. docs/e2ee.md
// states the exact chance. No DOM here; called on the key session's queue.

import { toBase64Url, fromBase64Url } from './link.js';

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const TAG = 'aconfi-e2ee-v1';

/** Digits in the code: 20 digits from 72 bits of hash (≥ 66 bits). */
export const CODE_DIGITS = 20;

/**
 * @typedef {{r: string, roster: string, c: string}} Commit
 * @typedef {{r: string, n: string}} Reveal
 * @typedef {{
 *   id: string, roster: string, pids: number[], nonce: Uint8Array,
 *   commits: Map<number, string>, reveals: Map<number, Uint8Array>, revealed: boolean,
 * }} Round
 */

export class SafetyCode {
  /**
   * @param {{room: string, random: (n: number) => Uint8Array, send: (data: string) => void, changed: () => void}} opts
   */
  constructor(opts) {
    this.room = opts.room;
    this.random = opts.random;
    this.send = opts.send;
    this.changed = opts.changed;
    this.you = 0;
    /** @type {Map<number, string>} everyone's public key as we hold it, ours included */
    this.keys = new Map();
    /** @type {Round|null} */
    this.round = null;
    /** Ids and keys the current round is for. */
    this.view = '';
    /** The code of the last round completed for the current roster; '' while comparing. */
    this.code = '';
    /** Who the code covers (ours included). @type {number[]} */
    this.covers = [];
    /** Each participant's latest commitment and reveal, whatever its round. */
    /** @type {Map<number, Commit>} */
    this.commits = new Map();
    /** @type {Map<number, Reveal>} */
    this.reveals = new Map();
    /** Round ids we took part in: never twice. @type {Set<string>} */
    this.used = new Set();
    /**
     * Rounds we may still join: one after each change in who is here, so
     * that a server cannot run round after round until two codes agree.
     */
    this.budget = 1;
  }

  /**
   * Starts afresh for a new connection as `you`.
   * @param {number} you @param {Map<number, string>} keys everyone's public key as we hold it, ours included
   */
  reset(you, keys) {
    this.you = you;
    this.keys = keys;
    this.round = null;
    this.view = '';
    this.code = '';
    this.covers = [];
    this.commits.clear();
    this.reveals.clear();
    this.used.clear();
    this.budget = 1;
  }

  /** Someone joined or left (a change everyone sees): one more round may come. */
  grant() {
    this.budget = 1;
  }

  /**
   * The peers whose link checked out changed: a new round for the new
   * roster. @param {Map<number, string>} keys as for `reset`
   */
  async rosterChanged(keys) {
    this.keys = keys;
    const roster = rosterOf(keys);
    // The same people with the same keys: the round stands. A key changed
    // under a known id (which the session never allows) would start anew.
    const view = [...keys].sort((x, y) => x[0] - y[0]).map(([pid, pub]) => `${pid}:${pub}`).join(',');
    if (view === this.view) return;
    this.view = view;
    this.round = null;
    this.code = '';
    this.covers = [];
    this.budget = 1;
    this.changed();
    const pids = roster.split(',').map(Number);
    // Alone, there is nobody to compare with.
    if (pids.length < 2) return;
    if (pids[0] === this.you) {
      await this.join(toBase64Url(this.random(16)), roster);
    } else {
      // The leader may have opened this roster's round already.
      const led = this.commits.get(pids[0]);
      if (led && led.roster === roster) await this.onCommit(pids[0], led);
    }
  }

  /** @param {string} id @param {string} roster */
  async join(id, roster) {
    if (this.used.has(id) || this.budget <= 0) return;
    this.used.add(id);
    this.budget -= 1;
    const pids = roster.split(',').map(Number);
    const nonce = this.random(32);
    /** @type {Round} */
    const round = { id, roster, pids, nonce, commits: new Map(), reveals: new Map(), revealed: false };
    this.round = round;
    const mine = await this.commitment(id, roster, this.you, nonce);
    round.commits.set(this.you, mine);
    this.send(JSON.stringify({ t: 'commit', r: id, roster, c: mine }));
    for (const pid of pids) {
      const c = this.commits.get(pid);
      if (pid !== this.you && c?.r === id && c.roster === roster) round.commits.set(pid, c.c);
    }
    await this.maybeReveal();
  }

  /** A commitment relayed from `from`. @param {number} from @param {any} m */
  async onCommit(from, m) {
    if (!isText(m.r, 64) || !isText(m.roster, 4096) || !isText(m.c, 64) || from === this.you) return;
    const c = { r: m.r, roster: m.roster, c: m.c };
    this.commits.set(from, c);
    const round = this.round;
    if (round && round.id === c.r) {
      // The first commitment of a round counts; a second one is a forgery.
      if (round.pids.includes(from) && !round.commits.has(from) && c.roster === round.roster) {
        round.commits.set(from, c.c);
        await this.maybeReveal();
      }
      return;
    }
    // A round is opened by the roster's lowest id, for our roster only.
    const roster = rosterOf(this.keys);
    if (c.roster === roster && Number(roster.split(',')[0]) === from) await this.join(c.r, roster);
  }

  /** A reveal relayed from `from`. @param {number} from @param {any} m */
  async onReveal(from, m) {
    if (!isText(m.r, 64) || !isText(m.n, 64) || from === this.you) return;
    this.reveals.set(from, { r: m.r, n: m.n });
    await this.takeReveals();
  }

  /** Shows our nonce once we hold everyone's commitment. */
  async maybeReveal() {
    const round = this.round;
    if (!round || round.revealed || !round.pids.every((pid) => round.commits.has(pid))) return;
    round.revealed = true;
    this.send(JSON.stringify({ t: 'reveal', r: round.id, n: toBase64Url(round.nonce) }));
    await this.takeReveals();
  }

  /** Opens the reveals of the current round; the code once all opened. */
  async takeReveals() {
    const round = this.round;
    if (!round || !round.revealed) return;
    for (const pid of round.pids) {
      const rev = this.reveals.get(pid);
      if (pid === this.you || round.reveals.has(pid) || rev?.r !== round.id) continue;
      const nonce = fromBase64Url(rev.n);
      if (!nonce || nonce.length !== 32) continue;
      // A nonce that does not open its commitment changes nothing: the
      // round never completes (and a later one may).
      if (await this.commitment(round.id, round.roster, pid, nonce) === round.commits.get(pid)) round.reveals.set(pid, nonce);
    }
    round.reveals.set(this.you, round.nonce);
    if (!round.pids.every((pid) => round.reveals.has(pid)) || this.code) return;
    this.code = await codeOf(this.room, round, this.keys);
    this.covers = round.pids;
    this.changed();
  }

  /** @param {string} id @param {string} roster @param {number} pid @param {Uint8Array} nonce */
  async commitment(id, roster, pid, nonce) {
    const input = utf8.encode(`${TAG} commit|${this.room}|${id}|${roster}|${pid}|${this.keys.get(pid) ?? ''}|${toBase64Url(nonce)}`);
    return toBase64Url(new Uint8Array(await subtle.digest('SHA-256', input)));
  }
}

/** The roster of `keys`: the sorted ids, comma-separated. @param {Map<number, string>} keys */
export function rosterOf(keys) {
  return [...keys.keys()].sort((a, b) => a - b).join(',');
}

/**
 * "12345 67890 12345 67890": SHA-256 over the room, round, roster and each
 * member's key and nonce; its first 9 bytes (72 bits) mod 10^20.
 * @param {string} room @param {Round} round @param {Map<number, string>} keys
 */
async function codeOf(room, round, keys) {
  const parts = round.pids.map((pid) => `${pid}:${keys.get(pid)}:${toBase64Url(/** @type {Uint8Array} */ (round.reveals.get(pid)))}`);
  const digest = new Uint8Array(await subtle.digest('SHA-256', utf8.encode(`${TAG} code|${room}|${round.id}|${round.roster}|${parts.join('|')}`)));
  let n = 0n;
  for (const b of digest.subarray(0, 9)) n = (n << 8n) | BigInt(b);
  const digits = String(n % 10n ** BigInt(CODE_DIGITS)).padStart(CODE_DIGITS, '0');
  return digits.match(/.{5}/g)?.join(' ') ?? digits;
}

/** @param {unknown} v @param {number} max @returns {v is string} */
function isText(v, max) {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}
