// Key management for an end-to-end encrypted meeting, without accounts:
// the link secret authenticates an ephemeral ECDH exchange over the
// signaling channel; each sender sends its own random SFrame key to each
// peer under the pairwise key; keys ratchet forward when someone joins and
// are replaced when someone leaves. docs/e2ee.md describes the scheme and
// its threat model.
//
// Sans-IO: the session is told what happened (start, joined, left, a
// message) and answers through its sink; timers and randomness come from
// outside, so tests run a whole meeting's key exchange deterministically.
// Every operation runs in order on one queue. No DOM here.

import { MEDIA_SUITE, SUITES, concat, hkdfExpand, hkdfExtract, ratchet } from './sframe.js';
import { fromBase64Url, toBase64Url } from './link.js';
import { GEN_MASK, MAX_STEP, baseFor, kidOf, splitKid } from './keystore.js';

export { kidOf, splitKid };

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();
/** HKDF over SHA-256, as the media suite's. */
const SHA256 = SUITES[4];
const TAG = 'aconfi-e2ee-v1';

// KIDs (pid << 24 | generation << 8 | ratchet step) are laid out in
// keystore.js.

/** Leaves within this window share one new key. */
export const ROTATE_AFTER_LEAVE_MS = 2000;
/** A new key is sent this long before it is used, so receivers have it. */
export const SWITCH_DELAY_MS = 1000;
/** Key deliveries are gathered this long into one message. */
export const DELIVERY_BATCH_MS = 50;
/**
 * A joiner shows its key only once it holds the keys of everyone already
 * there, or after this long (someone may never answer). Keys of those
 * already there that come later are not accepted: a server in the middle
 * must commit to the keys it shows the joiner before it sees the joiner's,
 * which is what makes the short safety code hard to match (docs/e2ee.md).
 */
export const REVEAL_WAIT_MS = 3000;

/**
 * What the session asks of its surroundings.
 * @typedef {{
 *   send: (to: number|null, data: string) => void,
 *   sendKey: (kid: bigint, key: Uint8Array) => void,
 *   receiveKey: (participant: number, kid: bigint, key: Uint8Array) => void,
 *   forget: (participant: number) => void,
 *   change: () => void,
 *   mismatch: () => void,
 * }} Sink
 *   send: relay a key exchange message (to one participant, or null: all)
 *   sendKey: encrypt our media with this key from now on
 *   receiveKey: frames from `participant` may use this key (and its ratchet)
 *   forget: someone left; their keys may go once late frames are through
 *   change: who is verified, or the safety code, changed
 *   mismatch: our link's secret is not this meeting's
 * @typedef {{setTimeout: (fn: () => void, ms: number) => unknown, clearTimeout: (t: any) => void}} Timers
 * @typedef {'verified'|'pending'|'failed'} PeerStatus
 */

/**
 * @typedef {{
 *   pub: Uint8Array|null, pubText: string, status: PeerStatus,
 *   pairKey: CryptoKey|null, present: boolean, served: boolean, hasKey: boolean,
 *   early: string[], tooLate: boolean, gens: number[],
 * }} Peer
 *   present: was in the room when we joined (else joined after us)
 *   served: has been sent our current key
 *   early: their key messages that came before we could verify them
 *   tooLate: was here when we came but showed no key before we showed ours
 *   gens: generations of theirs we hold keys of, newest last (at most two)
 */

export class KeySession {
  /**
   * @param {{secret: Uint8Array, room: string, sink: Sink, timers?: Timers, random?: (n: number) => Uint8Array}} opts
   */
  constructor(opts) {
    this.secret = opts.secret;
    this.room = opts.room;
    this.sink = opts.sink;
    this.timers = /** @type {Timers} */ (opts.timers ?? globalThis);
    this.random = opts.random ?? ((n) => globalThis.crypto.getRandomValues(new Uint8Array(n)));
    /** @type {Promise<void>} every operation in order */
    this.queue = Promise.resolve();
    /** @type {number|null} */
    this.you = null;
    /** @type {Map<number, Peer>} */
    this.peers = new Map();
    this.gen = 0;
    this.step = 0;
    /** @type {Uint8Array} our current sending key */
    this.key = new Uint8Array(0);
    /** @type {{gen: number, key: Uint8Array}|null} a new generation sent out, not yet used */
    this.next = null;
    /** Base keys of senders we received (and ratcheted), by KID. @type {Map<bigint, Uint8Array>} */
    this.received = new Map();
    /** @type {Set<number>} peers waiting for our key */
    this.toDeliver = new Set();
    /** @type {unknown} */
    this.deliveryTimer = null;
    /** @type {unknown} */
    this.rotationTimer = null;
    /** @type {unknown} */
    this.switchTimer = null;
    /** @type {unknown} */
    this.revealTimer = null;
    this.mismatchReported = false;
    /** Whether we have shown our key yet (see REVEAL_WAIT_MS). */
    this.revealed = false;
    /** Someone verified once: our link is this meeting's. */
    this.everVerified = false;
    /** Bumped by every start and stop: work queued or timed before is dropped. */
    this.epoch = 0;
    /** The safety code, once computed ("1234 5678 9012"). */
    this.code = '';
    /** @type {CryptoKeyPair|null} */
    this.ecdh = null;
    this.pubText = '';
    /** Our announcement of this connection's key (the same for everyone). */
    this.announcement = '';
    this.ready = this.init();
  }

  async init() {
    const prk = await hkdfExtract(SHA256, utf8.encode(TAG), this.secret);
    const authBytes = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} announce`), 32);
    this.authKey = await subtle.importKey('raw', /** @type {BufferSource} */ (authBytes), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    this.pairSalt = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} pair`), 32);
  }

  /**
   * Runs `fn` after everything queued before it; resolves to its result.
   * @template T
   * @param {() => Promise<T>|T} fn
   * @returns {Promise<T>}
   */
  run(fn) {
    const epoch = this.epoch;
    const next = this.queue.then(() => this.ready).then(() => (this.epoch === epoch ? fn() : undefined));
    this.queue = next.then(() => {}, (e) => console.error('e2ee', e));
    return /** @type {Promise<T>} */ (next);
  }

  /**
   * An input: queued like `run`, its failures logged by the queue rather
   * than left to the caller. @param {() => Promise<void>|void} fn
   */
  input(fn) {
    return this.run(fn).catch(() => {});
  }

  /**
   * Runs `fn` on the queue after `ms`, unless the session started afresh or
   * stopped meanwhile. @param {number} ms @param {() => Promise<void>|void} fn
   */
  later(ms, fn) {
    const epoch = this.epoch;
    return this.timers.setTimeout(() => {
      if (this.epoch === epoch) this.input(fn);
    }, ms);
  }

  // ---- inputs ----

  /**
   * We joined (again, after a reconnect: everything starts afresh) as
   * `you`, with `present` in the room.
   * @param {number} you @param {number[]} present
   */
  start(you, present) {
    // Anything of a previous connection still queued or timed is dropped.
    this.epoch += 1;
    this.stopTimers();
    return this.input(async () => {
      this.you = you;
      this.peers = new Map(present.map((pid) => [pid, newPeer(true)]));
      this.received.clear();
      this.toDeliver.clear();
      this.mismatchReported = false;
      this.everVerified = false;
      this.revealed = false;
      this.ecdh = /** @type {CryptoKeyPair} */ (await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']));
      this.pubText = toBase64Url(new Uint8Array(await subtle.exportKey('raw', this.ecdh.publicKey)));
      this.announcement = JSON.stringify(await this.announce());
      this.gen = 0;
      this.step = 0;
      this.next = null;
      this.key = this.random(32);
      this.sink.sendKey(this.kid(), this.key);
      await this.updateCode();
      if (present.length === 0) await this.reveal();
      else this.revealTimer = this.later(REVEAL_WAIT_MS, () => this.reveal());
    });
  }

  /**
   * Shows our key to everyone in the room: once those already here showed
   * theirs, or when the wait is over. Those who have not by then are not
   * accepted later (see REVEAL_WAIT_MS).
   */
  async reveal() {
    if (this.revealed) return;
    this.revealed = true;
    if (this.revealTimer !== null) this.timers.clearTimeout(this.revealTimer);
    this.revealTimer = null;
    for (const p of this.peers.values()) if (p.present && p.status === 'pending') p.tooLate = true;
    this.sink.send(null, this.announcement);
    this.sink.change();
    this.checkMismatch();
  }

  /** Reveals once everyone who was here when we came has answered. */
  async revealIfAllAnswered() {
    if (!this.revealed && [...this.peers.values()].every((p) => !p.present || p.status !== 'pending')) await this.reveal();
  }

  /** Someone joined after us. @param {number} pid */
  joined(pid) {
    return this.input(async () => {
      if (pid === this.you) return;
      this.peers.set(pid, newPeer(false));
      // Not yet revealed: our coming broadcast reaches them too.
      if (this.revealed) this.sink.send(pid, this.announcement);
      this.sink.change();
    });
  }

  /** Someone left: after a short wait, everyone still here gets a new key. @param {number} pid */
  left(pid) {
    return this.input(async () => {
      if (!this.peers.delete(pid)) return;
      this.toDeliver.delete(pid);
      for (const kid of [...this.received.keys()]) if (splitKid(kid).pid === pid) this.received.delete(kid);
      this.sink.forget(pid);
      if (this.rotationTimer === null) {
        this.rotationTimer = this.later(ROTATE_AFTER_LEAVE_MS, () => {
          this.rotationTimer = null;
          return this.rotate();
        });
      }
      await this.updateCode();
      await this.revealIfAllAnswered();
      this.checkMismatch();
    });
  }

  /** A key exchange message relayed from `from`. @param {number} from @param {string} data */
  handle(from, data) {
    return this.input(() => this.receive(from, data));
  }

  /** Stops at once (when leaving): nothing queued or timed runs after. */
  stop() {
    this.epoch += 1;
    this.stopTimers();
    return Promise.resolve();
  }

  // ---- what the UI asks ----

  /**
   * Where we stand with `pid`: their link secret checked out ('verified')
   * or not ('failed'), or not known yet; and whether we hold their key.
   * @param {number} pid @returns {{status: PeerStatus, hasKey: boolean}}
   */
  peerState(pid) {
    const p = this.peers.get(pid);
    return { status: p?.status ?? 'pending', hasKey: p?.hasKey ?? false };
  }

  /** Whether `pid` is confirmed: verified, and we hold their key. @param {number} pid */
  confirmed(pid) {
    const { status, hasKey } = this.peerState(pid);
    return status === 'verified' && hasKey;
  }

  // ---- messages ----

  async announce() {
    const mac = await subtle.sign('HMAC', /** @type {CryptoKey} */ (this.authKey), this.announceInput(/** @type {number} */ (this.you), this.pubText));
    return { t: 'announce', pub: this.pubText, mac: toBase64Url(new Uint8Array(mac)) };
  }

  /** @param {number} pid @param {string} pub */
  announceInput(pid, pub) {
    return utf8.encode(`${TAG} announce|${this.room}|${pid}|${pub}`);
  }

  /** @param {number} from @param {string} data */
  async receive(from, data) {
    /** @type {any} */
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    const peer = this.peers.get(from);
    if (!peer || typeof m !== 'object' || m === null) return;
    if (m.t === 'announce') await this.onAnnounce(from, peer, m);
    else if (m.t === 'keys') {
      if (peer.status === 'verified') await this.onKeys(from, peer, m);
      else if (peer.status === 'pending' && peer.early.length < 8) peer.early.push(data);
    }
  }

  /** @param {number} from @param {Peer} peer @param {any} m */
  async onAnnounce(from, peer, m) {
    if (peer.status !== 'pending' || peer.tooLate || typeof m.pub !== 'string' || typeof m.mac !== 'string') return;
    const mac = fromBase64Url(m.mac);
    const pub = fromBase64Url(m.pub);
    const authentic = Boolean(mac && pub)
      && await subtle.verify('HMAC', /** @type {CryptoKey} */ (this.authKey), /** @type {BufferSource} */ (mac), this.announceInput(from, m.pub));
    const pairKey = authentic ? await this.pairKeyWith(from, /** @type {Uint8Array} */ (pub), m.pub).catch(() => null) : null;
    if (pairKey) {
      peer.status = 'verified';
      peer.pub = pub;
      peer.pubText = m.pub;
      peer.pairKey = pairKey;
      this.everVerified = true;
      this.deliverTo(from);
      await this.updateCode();
    } else {
      peer.status = 'failed';
      this.sink.change();
    }
    await this.revealIfAllAnswered();
    this.checkMismatch();
    if (pairKey) for (const early of peer.early.splice(0)) await this.receive(from, early);
  }

  /** @param {number} from @param {Peer} peer @param {any} m */
  async onKeys(from, peer, m) {
    if (!Array.isArray(m.keys)) return;
    for (const k of m.keys) {
      const wrapped = typeof k?.to === 'object' && k.to !== null ? k.to[String(this.you)] : undefined;
      if (typeof wrapped !== 'string' || typeof k.kid !== 'string' || !/^\d{1,20}$/.test(k.kid)) continue;
      const kid = BigInt(k.kid);
      // Only the sender's own keys: a KID names its owner.
      if (splitKid(kid).pid !== from) continue;
      const key = await this.unwrap(/** @type {CryptoKey} */ (peer.pairKey), wrapped, this.keyAad(from, /** @type {number} */ (this.you), kid));
      if (key?.length !== 32) continue;
      this.received.set(kid, key);
      // A sender's two newest generations are kept (the older for late
      // chat); anything older goes.
      const gen = splitKid(kid).gen;
      if (!peer.gens.includes(gen)) {
        peer.gens.push(gen);
        const old = peer.gens.length > 2 ? peer.gens.shift() : undefined;
        if (old !== undefined) {
          for (const k of [...this.received.keys()]) if (splitKid(k).pid === from && splitKid(k).gen === old) this.received.delete(k);
        }
      }
      this.sink.receiveKey(from, kid, key);
      if (!peer.hasKey) {
        peer.hasKey = true;
        this.sink.change();
      }
    }
  }

  // ---- our key ----

  kid() {
    return kidOf(/** @type {number} */ (this.you), this.gen, this.step);
  }

  /** Sends our key to `pid` soon, batched with others. @param {number} pid */
  deliverTo(pid) {
    this.toDeliver.add(pid);
    if (this.deliveryTimer !== null) return;
    this.deliveryTimer = this.later(DELIVERY_BATCH_MS, () => {
      this.deliveryTimer = null;
      return this.deliver();
    });
  }

  async deliver() {
    const to = [...this.toDeliver].filter((pid) => this.peers.get(pid)?.status === 'verified');
    this.toDeliver.clear();
    if (to.length === 0) return;
    // Someone who joined after us must not read what we sent before: move
    // our key one ratchet step on first (those who have it follow).
    if (to.some((pid) => !this.peers.get(pid)?.present && !this.peers.get(pid)?.served)) await this.advance();
    for (const pid of to) /** @type {Peer} */ (this.peers.get(pid)).served = true;
    await this.sendKeys(to, [{ kid: this.kid(), key: this.key }, ...(this.next ? [{ kid: kidOf(/** @type {number} */ (this.you), this.next.gen, 0), key: this.next.key }] : [])]);
  }

  /** One ratchet step, or a new generation when the steps run out. */
  async advance() {
    if (this.step < MAX_STEP) {
      this.step += 1;
      this.key = await ratchet(MEDIA_SUITE, this.key);
      this.sink.sendKey(this.kid(), this.key);
      return;
    }
    // 256 joins without a leave: start a new generation at once (beyond
    // one waiting to be used, which it replaces: one key per KID); everyone
    // verified gets it with this delivery or the next.
    this.gen = ((this.next?.gen ?? this.gen) + 1) & GEN_MASK;
    this.step = 0;
    this.key = this.random(32);
    this.next = null;
    if (this.switchTimer !== null) this.timers.clearTimeout(this.switchTimer);
    this.switchTimer = null;
    this.sink.sendKey(this.kid(), this.key);
    for (const [pid, p] of this.peers) if (p.status === 'verified') this.deliverTo(pid);
  }

  /** After a leave: a new random key for those still here, used a moment later. */
  async rotate() {
    const gen = ((this.next?.gen ?? this.gen) + 1) & GEN_MASK;
    const next = { gen, key: this.random(32) };
    this.next = next;
    const to = [...this.peers].filter(([, p]) => p.status === 'verified').map(([pid]) => pid);
    await this.sendKeys(to, [{ kid: kidOf(/** @type {number} */ (this.you), gen, 0), key: next.key }]);
    if (this.switchTimer !== null) this.timers.clearTimeout(this.switchTimer);
    this.switchTimer = this.later(SWITCH_DELAY_MS, () => {
      this.switchTimer = null;
      if (!this.next) return;
      this.gen = this.next.gen;
      this.step = 0;
      this.key = this.next.key;
      this.next = null;
      this.sink.sendKey(this.kid(), this.key);
    });
  }

  /**
   * One message carrying `keys`, each wrapped for each of `to` under the
   * pairwise key: sent to that one participant, or to all when several.
   * @param {number[]} to @param {{kid: bigint, key: Uint8Array}[]} keys
   */
  async sendKeys(to, keys) {
    if (to.length === 0) return;
    const out = [];
    for (const { kid, key } of keys) {
      /** @type {Record<string, string>} */
      const wrapped = {};
      for (const pid of to) {
        const peer = /** @type {Peer} */ (this.peers.get(pid));
        wrapped[String(pid)] = await this.wrap(/** @type {CryptoKey} */ (peer.pairKey), key, this.keyAad(/** @type {number} */ (this.you), pid, kid));
      }
      out.push({ kid: String(kid), to: wrapped });
    }
    this.sink.send(to.length === 1 ? to[0] : null, JSON.stringify({ t: 'keys', keys: out }));
  }

  // ---- pairwise keys ----

  /** @param {number} pid @param {Uint8Array} pub @param {string} pubText */
  async pairKeyWith(pid, pub, pubText) {
    const theirs = await subtle.importKey('raw', /** @type {BufferSource} */ (pub), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    const ecdh = /** @type {CryptoKeyPair} */ (this.ecdh);
    const shared = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: theirs }, ecdh.privateKey, 256));
    const me = /** @type {number} */ (this.you);
    const [lo, hi] = me < pid ? [[me, this.pubText], [pid, pubText]] : [[pid, pubText], [me, this.pubText]];
    const prk = await hkdfExtract(SHA256, /** @type {Uint8Array} */ (this.pairSalt), shared);
    const bytes = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} pair|${this.room}|${lo[0]}|${hi[0]}|${lo[1]}|${hi[1]}`), 32);
    return subtle.importKey('raw', /** @type {BufferSource} */ (bytes), 'AES-GCM', false, ['encrypt', 'decrypt']);
  }

  /** @param {number} from @param {number} to @param {bigint} kid */
  keyAad(from, to, kid) {
    return utf8.encode(`${TAG} key|${this.room}|${from}|${to}|${kid}`);
  }

  /** @param {CryptoKey} k @param {Uint8Array} plain @param {Uint8Array} aad */
  async wrap(k, plain, aad) {
    const iv = this.random(12);
    const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: /** @type {BufferSource} */ (iv), additionalData: /** @type {BufferSource} */ (aad) }, k, /** @type {BufferSource} */ (plain)));
    return toBase64Url(concat(iv, ct));
  }

  /** @param {CryptoKey} k @param {string} text @param {Uint8Array} aad @returns {Promise<Uint8Array|null>} */
  async unwrap(k, text, aad) {
    const bytes = fromBase64Url(text);
    if (!bytes || bytes.length < 12 + 16) return null;
    try {
      const iv = /** @type {BufferSource} */ (bytes.subarray(0, 12));
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv, additionalData: /** @type {BufferSource} */ (aad) }, k, /** @type {BufferSource} */ (bytes.subarray(12))));
    } catch {
      return null;
    }
  }

  // ---- chat ----

  /**
   * Seals a chat message: to everyone under a key derived from our current
   * media key, privately (`to`) under the pairwise key.
   * @param {string} text @param {number} [to]
   */
  sealChat(text, to) {
    return this.run(async () => {
      if (!this.revealed) throw new Error('keys not exchanged yet');
      const me = /** @type {number} */ (this.you);
      if (to !== undefined) {
        const peer = this.peers.get(to);
        if (peer?.status !== 'verified') throw new Error('no verified key for that participant yet');
        return `p${await this.wrap(/** @type {CryptoKey} */ (peer.pairKey), utf8.encode(text), utf8.encode(`${TAG} private|${this.room}|${me}|${to}`))}`;
      }
      const kid = this.kid();
      const k = await chatKey(this.key);
      return `g${kid}.${await this.wrap(k, utf8.encode(text), utf8.encode(`${TAG} chat|${this.room}|${me}|${kid}`))}`;
    }).then((sealed) => {
      if (sealed === undefined) throw new Error('the meeting connection started afresh');
      return sealed;
    });
  }

  /**
   * Opens a sealed chat message from `from`; null if it cannot be opened.
   * @param {number} from @param {string} sealed @param {boolean} isPrivate
   * @returns {Promise<string|null>}
   */
  openChat(from, sealed, isPrivate) {
    return this.run(async () => {
      const me = /** @type {number} */ (this.you);
      /** @type {Uint8Array|null} */
      let plain = null;
      if (isPrivate && sealed.startsWith('p')) {
        const peer = this.peers.get(from);
        if (peer?.status !== 'verified') return null;
        plain = await this.unwrap(/** @type {CryptoKey} */ (peer.pairKey), sealed.slice(1), utf8.encode(`${TAG} private|${this.room}|${from}|${me}`));
      } else {
        const m = /^g(\d{1,20})\.(.*)$/.exec(sealed);
        if (isPrivate || !m) return null;
        const kid = BigInt(m[1]);
        if (splitKid(kid).pid !== from) return null;
        const key = await this.receivedKey(kid);
        if (!key) return null;
        plain = await this.unwrap(await chatKey(key), m[2], utf8.encode(`${TAG} chat|${this.room}|${from}|${kid}`));
      }
      return plain && utf8d.decode(plain);
    }).then((text) => text ?? null, () => null);
  }

  /** A sender's base key for `kid`, ratcheting forward from one we hold. @param {bigint} kid */
  async receivedKey(kid) {
    return (await baseFor(this.received, kid, MAX_STEP)) ?? null;
  }

  // ---- safety code, mismatch ----

  /** A code everyone verified sees alike: from the sorted public keys of all verified. */
  async updateCode() {
    const pubs = [this.pubText, ...[...this.peers.values()].filter((p) => p.status === 'verified').map((p) => p.pubText)].sort();
    const digest = new Uint8Array(await subtle.digest('SHA-256', utf8.encode(pubs.join('|'))));
    let n = 0n;
    for (const b of digest.subarray(0, 8)) n = (n << 8n) | BigInt(b);
    const digits = String(n % 10n ** 12n).padStart(12, '0');
    this.code = `${digits.slice(0, 4)} ${digits.slice(4, 8)} ${digits.slice(8)}`;
    this.sink.change();
  }

  /**
   * Our secret is not this meeting's: we have shown our key, nobody has
   * ever verified, and of those who were here when we came at least one
   * failed and none is still to answer. Once anyone verified, never (a
   * hostile participant's failures must not throw us out).
   */
  checkMismatch() {
    if (this.mismatchReported || this.everVerified || !this.revealed) return;
    const present = [...this.peers.values()].filter((p) => p.present);
    if (!present.some((p) => p.status === 'failed')) return;
    if (present.some((p) => p.status === 'pending' && !p.tooLate)) return;
    this.mismatchReported = true;
    this.sink.mismatch();
  }

  stopTimers() {
    for (const t of [this.deliveryTimer, this.rotationTimer, this.switchTimer, this.revealTimer]) if (t !== null) this.timers.clearTimeout(t);
    this.deliveryTimer = this.rotationTimer = this.switchTimer = this.revealTimer = null;
  }

  /**
   * Every key this session holds, for the tests only (a page's scripts
   * can reach this object anyway; the flag keeps it out of normal use).
   */
  exportKeys() {
    if (!(/** @type {any} */ (globalThis)).ACONFI_TEST_HOOKS) throw new Error('test hook');
    const hexOf = (/** @type {Uint8Array} */ b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return {
      sending: { kid: String(this.kid()), key: hexOf(this.key) },
      next: this.next && { kid: String(kidOf(/** @type {number} */ (this.you), this.next.gen, 0)), key: hexOf(this.next.key) },
      received: [...this.received].map(([kid, key]) => ({ kid: String(kid), key: hexOf(key) })),
    };
  }
}

/** @param {boolean} present @returns {Peer} */
function newPeer(present) {
  return { pub: null, pubText: '', status: 'pending', pairKey: null, present, served: false, hasKey: false, early: [], tooLate: false, gens: [] };
}

/** The chat key of a media base key. @param {Uint8Array} base */
async function chatKey(base) {
  const prk = await hkdfExtract(SHA256, new Uint8Array(0), base);
  const bytes = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} chat`), 16);
  return subtle.importKey('raw', /** @type {BufferSource} */ (bytes), 'AES-GCM', false, ['encrypt', 'decrypt']);
}
