// Key management for an end-to-end encrypted meeting, without accounts:
// the link secret authenticates an ephemeral ECDH exchange over the
// signaling channel; each sender sends its own random SFrame key to each
// peer under the pairwise key; keys ratchet forward when someone joins and
// are replaced when someone leaves; a safety code (safety.js) shows whether
// anyone, the server included, sits in the middle. docs/e2ee.md describes
// the scheme and its threat model.
//
// Sans-IO: the session is told what happened (start, joined, left, a
// message) and answers through its sink; timers and randomness come from
// outside, so tests run a whole meeting's key exchange deterministically.
// Every operation runs in order on one queue. No DOM here.

import { MEDIA_SUITE, SUITES, concat, hkdfExpand, hkdfExtract, ratchet } from './sframe.js';
import { fromBase64Url, toBase64Url } from './link.js';
import { GEN_MASK, MAX_STEP, baseFor, kidOf, splitKid } from './keystore.js';
import { SafetyCode } from './safety.js';

export { kidOf, splitKid };

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();
/** HKDF over SHA-256, as the media suite's. */
const SHA256 = SUITES[4];
const TAG = 'aconfi-e2ee-v2';

// KIDs (pid << 24 | generation << 8 | ratchet step) are laid out in
// keystore.js.

/** Leaves within this window share one new key. */
export const ROTATE_AFTER_LEAVE_MS = 2000;
/** A new key is sent this long before it is used, so receivers have it. */
export const SWITCH_DELAY_MS = 1000;
/** Key deliveries are gathered this long into one message. */
export const DELIVERY_BATCH_MS = 50;
/**
 * How long a joiner waits for those already there to answer before a link
 * that nobody accepted counts as wrong (someone may never answer).
 */
export const ANSWER_WAIT_MS = 3000;

/**
 * What the session asks of its surroundings.
 * @typedef {{
 *   send: (to: number|null, data: string) => void,
 *   sendKey: (kid: bigint, key: Uint8Array) => void,
 *   receiveKey: (participant: number, kid: bigint, key: Uint8Array) => void,
 *   forget: (participant: number) => void,
 *   change: () => void,
 *   mismatch: () => void,
 *   authentic?: (participant: number) => void,
 * }} Sink
 *   send: relay a key exchange message (to one participant, or null: all)
 *   sendKey: encrypt our media with this key from now on
 *   receiveKey: frames from `participant` may use this key (and its ratchet)
 *   forget: someone left; their keys may go once late frames are through
 *   change: whose link checked out, whose keys we hold, or the safety code changed
 *   mismatch: our link's secret is not this meeting's
 *   authentic: `participant`'s link checked out (the server is told: it lets
 *     only those someone confirmed moderate)
 * @typedef {{setTimeout: (fn: () => void, ms: number) => unknown, clearTimeout: (t: any) => void}} Timers
 * @typedef {'authentic'|'pending'|'failed'} PeerStatus
 *   authentic: showed a key under this meeting's link (anyone holding the
 *   link could have; the safety code tells whether it is really theirs)
 * @typedef {'match'|'differ'|null} Comparison what our user said of a code that covered them
 * @typedef {{status: PeerStatus, hasKey: boolean, compared: Comparison}} PeerState
 * @typedef {{text: string}|{failed: true}|{replayed: true}} Opened what a sealed chat message turned out to be
 */

/**
 * @typedef {{
 *   pub: Uint8Array|null, pubText: string, nonce: string, status: PeerStatus,
 *   pairKey: CryptoKey|null, present: boolean, knownAt: number, hasKey: boolean,
 *   early: string[], gens: number[], compared: Comparison, chatSeq: number,
 * }} Peer
 *   nonce: their fresh value of this join (hello or announce)
 *   present: was in the room when we joined (they answer our hello)
 *   knownAt: our key serial when we learnt of them: a key made before must
 *     move a ratchet step on before they get it
 *   early: their key messages that came before we could authenticate them
 *   gens: generations of theirs we hold keys of, newest last (at most two)
 *   chatSeq: the sequence number of the last chat message taken from them
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
    /** Ids that left during this connection: never taken back. @type {Set<number>} */
    this.gone = new Set();
    this.gen = 0;
    this.step = 0;
    /** @type {Uint8Array} our current sending key */
    this.key = new Uint8Array(0);
    /** Bumped whenever we make a sending key or learn of someone. */
    this.serial = 0;
    /** The serial when our current sending key was made. */
    this.keySerial = 0;
    /** @type {{gen: number, key: Uint8Array}|null} a new generation sent out, not yet used */
    this.next = null;
    /** Base keys of senders we received (and ratcheted), by KID. @type {Map<bigint, Uint8Array>} */
    this.received = new Map();
    /** @type {Set<number>} peers waiting for our key */
    this.toDeliver = new Set();
    /** @type {Map<number, number>} serial of the key each peer was last given */
    this.served = new Map();
    /** @type {unknown} */
    this.deliveryTimer = null;
    /** @type {unknown} */
    this.rotationTimer = null;
    /** @type {unknown} */
    this.switchTimer = null;
    /** @type {unknown} */
    this.answerTimer = null;
    /** The wait for answers is over (see ANSWER_WAIT_MS). */
    this.waited = false;
    this.mismatchReported = false;
    /** Someone's link checked out once: ours is this meeting's. */
    this.everAuthentic = false;
    /** Our chat messages so far (each carries the next number). */
    this.chatSeq = 0;
    /** Bumped by every start and stop: work queued or timed before is dropped. */
    this.epoch = 0;
    /** @type {CryptoKeyPair|null} */
    this.ecdh = null;
    this.pubText = '';
    /** Our fresh value of this join, which answers to our hello must carry. */
    this.nonce = '';
    this.safety = new SafetyCode({
      room: this.room,
      random: this.random,
      send: (data) => this.sink.send(null, data),
      changed: () => this.sink.change(),
    });
    this.ready = this.init();
  }

  async init() {
    const prk = await hkdfExtract(SHA256, utf8.encode(TAG), this.secret);
    const authBytes = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} announce`), 32);
    this.authKey = await subtle.importKey('raw', /** @type {BufferSource} */ (authBytes), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    this.pairSalt = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} pair`), 32);
  }

  /** The safety code ("12345 67890 12345 67890"), or '' while it is being compared. */
  get code() {
    return this.safety.code;
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
      this.peers = new Map();
      this.gone.clear();
      this.received.clear();
      this.toDeliver.clear();
      this.served.clear();
      this.mismatchReported = false;
      this.everAuthentic = false;
      this.waited = false;
      this.chatSeq = 0;
      this.ecdh = /** @type {CryptoKeyPair} */ (await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']));
      this.pubText = toBase64Url(new Uint8Array(await subtle.exportKey('raw', this.ecdh.publicKey)));
      this.nonce = toBase64Url(this.random(16));
      for (const pid of present) if (pid !== you && !this.peers.has(pid)) this.peers.set(pid, newPeer(true, 0));
      this.gen = 0;
      this.step = 0;
      this.next = null;
      this.newKey(this.random(32));
      this.safety.reset(you, this.authenticKeys());
      await this.safety.rosterChanged(this.authenticKeys());
      const mac = await this.mac(`hello|${this.room}|${you}|${this.pubText}|${this.nonce}`);
      this.sink.send(null, JSON.stringify({ t: 'hello', pub: this.pubText, nonce: this.nonce, mac }));
      this.answerTimer = this.later(ANSWER_WAIT_MS, () => {
        this.waited = true;
        this.checkMismatch();
      });
      this.sink.change();
    });
  }

  /** Someone joined after us. @param {number} pid */
  joined(pid) {
    return this.input(async () => {
      // A join for someone known, or someone who left, changes nothing: a
      // server must not reset a peer whose key we hold, nor bring back a
      // leaver under its old id.
      if (pid === this.you || this.peers.has(pid) || this.gone.has(pid)) return;
      this.serial += 1;
      this.peers.set(pid, newPeer(false, this.serial));
      this.safety.grant();
      this.sink.change();
    });
  }

  /** Someone left: after a short wait, everyone still here gets a new key. @param {number} pid */
  left(pid) {
    return this.input(async () => {
      const peer = this.peers.get(pid);
      if (!peer) return;
      this.peers.delete(pid);
      this.gone.add(pid);
      this.toDeliver.delete(pid);
      this.served.delete(pid);
      for (const kid of [...this.received.keys()]) if (splitKid(kid).pid === pid) this.received.delete(kid);
      this.sink.forget(pid);
      if (this.rotationTimer === null) {
        this.rotationTimer = this.later(ROTATE_AFTER_LEAVE_MS, () => {
          this.rotationTimer = null;
          return this.rotate();
        });
      }
      this.safety.grant();
      if (peer.status === 'authentic') await this.safety.rosterChanged(this.authenticKeys());
      this.checkMismatch();
      this.sink.change();
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

  // ---- what the UI asks and says ----

  /**
   * Where we stand with `pid`: their link checked out ('authentic') or not
   * ('failed'), or not known yet; whether we hold their key; and what our
   * user said when comparing a safety code that covered them.
   * @param {number} pid @returns {PeerState}
   */
  peerState(pid) {
    const p = this.peers.get(pid);
    return { status: p?.status ?? 'pending', hasKey: p?.hasKey ?? false, compared: p?.compared ?? null };
  }

  /** Whether `pid`'s media can be decrypted: their link checked out and we hold their key. @param {number} pid */
  canDecrypt(pid) {
    const { status, hasKey } = this.peerState(pid);
    return status === 'authentic' && hasKey;
  }

  /**
   * Our user compared `code` with the others: 'match' (they read the same)
   * or 'differ'. Applies to everyone the code covers, if it is still the
   * current code; returns whether it was.
   * @param {string} code @param {'match'|'differ'} verdict
   */
  compare(code, verdict) {
    return this.run(() => {
      if (!code || code !== this.safety.code) return false;
      for (const pid of this.safety.covers) {
        const p = this.peers.get(pid);
        // A 'differ' stays: a later match of a new code does not undo it.
        if (p && p.compared !== 'differ') p.compared = verdict;
      }
      this.sink.change();
      return true;
    }).then((ok) => ok === true);
  }

  // ---- messages ----

  /** HMAC under the link's announce key. @param {string} text */
  async mac(text) {
    const mac = await subtle.sign('HMAC', /** @type {CryptoKey} */ (this.authKey), utf8.encode(`${TAG} ${text}`));
    return toBase64Url(new Uint8Array(mac));
  }

  /** @param {string} text @param {unknown} mac */
  async macOk(text, mac) {
    const bytes = typeof mac === 'string' ? fromBase64Url(mac) : null;
    if (!bytes) return false;
    return subtle.verify('HMAC', /** @type {CryptoKey} */ (this.authKey), /** @type {BufferSource} */ (bytes), utf8.encode(`${TAG} ${text}`));
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
    switch (m.t) {
      case 'hello': return this.onHello(from, peer, m);
      case 'announce': return this.onAnnounce(from, peer, m);
      // Kept even before their link checked out (a leader's round may come
      // first); used only once they are in our roster.
      case 'commit': return peer.status !== 'failed' ? this.safety.onCommit(from, m) : undefined;
      case 'reveal': return peer.status !== 'failed' ? this.safety.onReveal(from, m) : undefined;
      case 'keys':
        if (peer.status === 'authentic') await this.onKeys(from, peer, m);
        else if (peer.status === 'pending' && peer.early.length < 8) peer.early.push(data);
        return undefined;
      default: return undefined;
    }
  }

  /**
   * A newcomer's key. Taken once per id: a second hello (a replay, or a
   * server swapping keys under a known id) changes nothing.
   * @param {number} from @param {Peer} peer @param {any} m
   */
  async onHello(from, peer, m) {
    if (peer.status !== 'pending' || peer.present || peer.nonce || !isText(m.pub, 200) || !isText(m.nonce, 64)) return;
    peer.nonce = m.nonce;
    // Answered whether or not its link checks out (a joiner with a wrong
    // link learns so from our answer), and before we take its key, so that
    // it knows our key before anything else of ours reaches it. The answer
    // carries its nonce: proof that it was made for this join.
    const mac = await this.mac(`announce|${this.room}|${this.you}|${from}|${this.pubText}|${this.nonce}|${m.nonce}`);
    this.sink.send(from, JSON.stringify({ t: 'announce', pub: this.pubText, nonce: this.nonce, echo: m.nonce, mac }));
    const ok = await this.macOk(`hello|${this.room}|${from}|${m.pub}|${m.nonce}`, m.mac);
    await this.accept(from, peer, ok, m.pub, m.nonce);
  }

  /**
   * An answer to our hello from someone already here: only one made for
   * this join of ours (it echoes our nonce), so an old one replayed
   * cannot bring back a participant who left, or one from an earlier
   * meeting of this room. @param {number} from @param {Peer} peer @param {any} m
   */
  async onAnnounce(from, peer, m) {
    if (peer.status !== 'pending' || !peer.present || !isText(m.pub, 200) || !isText(m.nonce, 64) || m.echo !== this.nonce) return;
    const ok = await this.macOk(`announce|${this.room}|${from}|${this.you}|${m.pub}|${m.nonce}|${this.nonce}`, m.mac);
    await this.accept(from, peer, ok, m.pub, m.nonce);
  }

  /**
   * Takes a peer's key if its MAC checked out and it makes a pairwise
   * key; else marks the peer failed. Returns whether it was taken.
   * @param {number} from @param {Peer} peer @param {boolean} ok @param {string} pubText @param {string} nonce
   */
  async accept(from, peer, ok, pubText, nonce) {
    const pub = fromBase64Url(pubText);
    const pairKey = ok && pub ? await this.pairKeyWith(from, pub, pubText, nonce).catch(() => null) : null;
    if (!pairKey) {
      peer.status = 'failed';
      this.checkMismatch();
      this.sink.change();
      return false;
    }
    Object.assign(peer, { status: 'authentic', pub, pubText, nonce, pairKey });
    this.everAuthentic = true;
    this.sink.authentic?.(from);
    this.deliverTo(from);
    await this.safety.rosterChanged(this.authenticKeys());
    this.sink.change();
    for (const early of peer.early.splice(0)) await this.receive(from, early);
    return true;
  }

  /** @param {number} from @param {Peer} peer @param {any} m */
  async onKeys(from, peer, m) {
    if (!Array.isArray(m.keys)) return;
    for (const k of m.keys.slice(0, 4)) {
      const wrapped = typeof k?.to === 'object' && k.to !== null ? k.to[String(this.you)] : undefined;
      if (typeof wrapped !== 'string' || typeof k.kid !== 'string' || !/^\d{1,20}$/.test(k.kid)) continue;
      const kid = BigInt(k.kid);
      // Only the sender's own keys: a KID names its owner.
      const { pid, gen } = splitKid(kid);
      if (pid !== from) continue;
      // Only a generation at least as new as the older one we keep: a
      // replayed old key message must not push out a newer key.
      if (peer.gens.length > 0 && isOlder(gen, peer.gens[0])) continue;
      const key = await this.unwrap(/** @type {CryptoKey} */ (peer.pairKey), wrapped, this.keyAad(from, /** @type {number} */ (this.you), kid));
      if (key?.length !== 32) continue;
      this.received.set(kid, key);
      // A sender's two newest generations are kept (the older for late
      // chat); anything older goes.
      if (!peer.gens.includes(gen)) {
        peer.gens.push(gen);
        peer.gens.sort((a, b) => (isOlder(a, b) ? -1 : 1));
        const old = peer.gens.length > 2 ? peer.gens.shift() : undefined;
        if (old !== undefined) {
          for (const r of [...this.received.keys()]) if (splitKid(r).pid === from && splitKid(r).gen === old) this.received.delete(r);
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

  /** Sends with `key` from now on (a new generation or step). @param {Uint8Array} key */
  newKey(key) {
    this.key = key;
    this.serial += 1;
    this.keySerial = this.serial;
    this.sink.sendKey(this.kid(), this.key);
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
    const to = [...this.toDeliver].filter((pid) => this.peers.get(pid)?.status === 'authentic');
    this.toDeliver.clear();
    if (to.length === 0) return;
    // Someone we learnt of after our key was made must not read what we
    // sent with it before: move our key one ratchet step on first (those
    // who have it follow by themselves). Decided by what we saw, never by
    // what the server says about who was here first.
    if (to.some((pid) => /** @type {Peer} */ (this.peers.get(pid)).knownAt > this.keySerial && !this.served.has(pid))) await this.advance();
    for (const pid of to) this.served.set(pid, this.keySerial);
    await this.sendKeys(to, [{ kid: this.kid(), key: this.key }, ...(this.next ? [{ kid: kidOf(/** @type {number} */ (this.you), this.next.gen, 0), key: this.next.key }] : [])]);
  }

  /** One ratchet step, or a new generation when the steps run out. */
  async advance() {
    if (this.step < MAX_STEP) {
      this.step += 1;
      this.newKey(await ratchet(MEDIA_SUITE, this.key));
      return;
    }
    // 256 joins without a leave: start a new generation at once (beyond
    // one waiting to be used, which it replaces: one key per KID); everyone
    // authentic gets it with this delivery or the next.
    this.gen = ((this.next?.gen ?? this.gen) + 1) & GEN_MASK;
    this.step = 0;
    this.next = null;
    if (this.switchTimer !== null) this.timers.clearTimeout(this.switchTimer);
    this.switchTimer = null;
    this.newKey(this.random(32));
    for (const [pid, p] of this.peers) if (p.status === 'authentic') this.deliverTo(pid);
  }

  /** After a leave: a new random key for those still here, used a moment later. */
  async rotate() {
    const gen = ((this.next?.gen ?? this.gen) + 1) & GEN_MASK;
    const next = { gen, key: this.random(32) };
    this.next = next;
    const to = [...this.peers].filter(([, p]) => p.status === 'authentic').map(([pid]) => pid);
    await this.sendKeys(to, [{ kid: kidOf(/** @type {number} */ (this.you), gen, 0), key: next.key }]);
    if (this.switchTimer !== null) this.timers.clearTimeout(this.switchTimer);
    this.switchTimer = this.later(SWITCH_DELAY_MS, () => {
      this.switchTimer = null;
      if (!this.next) return;
      this.gen = this.next.gen;
      this.step = 0;
      const key = this.next.key;
      this.next = null;
      this.newKey(key);
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

  /**
   * ECDH with their key, bound to both ids, both keys and both joins'
   * nonces. @param {number} pid @param {Uint8Array} pub @param {string} pubText @param {string} nonce
   */
  async pairKeyWith(pid, pub, pubText, nonce) {
    const theirs = await subtle.importKey('raw', /** @type {BufferSource} */ (pub), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    const ecdh = /** @type {CryptoKeyPair} */ (this.ecdh);
    const shared = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: theirs }, ecdh.privateKey, 256));
    const me = /** @type {number} */ (this.you);
    const mine = [me, this.pubText, this.nonce];
    const other = [pid, pubText, nonce];
    const [lo, hi] = me < pid ? [mine, other] : [other, mine];
    const prk = await hkdfExtract(SHA256, /** @type {Uint8Array} */ (this.pairSalt), shared);
    const bytes = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} pair|${this.room}|${lo.join('|')}|${hi.join('|')}`), 32);
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
   * media key, privately (`to`) under the pairwise key. Each carries our
   * next sequence number, covered by the tag, so a receiver can tell a
   * replayed or reordered message.
   * @param {string} text @param {number} [to]
   */
  sealChat(text, to) {
    return this.run(async () => {
      const me = /** @type {number} */ (this.you);
      const seq = this.chatSeq + 1;
      /** @type {string} */
      let sealed;
      if (to !== undefined) {
        const peer = this.peers.get(to);
        if (peer?.status !== 'authentic') throw new Error('no key of that participant yet');
        sealed = `p${seq}.${await this.wrap(/** @type {CryptoKey} */ (peer.pairKey), utf8.encode(text), utf8.encode(`${TAG} private|${this.room}|${me}|${to}|${seq}`))}`;
      } else {
        const kid = this.kid();
        const k = await chatKey(this.key);
        sealed = `g${kid}.${seq}.${await this.wrap(k, utf8.encode(text), utf8.encode(`${TAG} chat|${this.room}|${me}|${kid}|${seq}`))}`;
      }
      this.chatSeq = seq;
      return sealed;
    }).then((sealed) => {
      if (sealed === undefined) throw new Error('the meeting connection started afresh');
      return sealed;
    });
  }

  /**
   * Opens a sealed chat message from `from`: its text, or that it could
   * not be opened, or that it is one we already had or an older one
   * delivered late (a server replaying or reordering).
   * @param {number} from @param {string} sealed @param {boolean} isPrivate
   * @returns {Promise<Opened>}
   */
  openChat(from, sealed, isPrivate) {
    /** @type {Opened} */
    const failed = { failed: true };
    return this.run(async () => {
      const me = /** @type {number} */ (this.you);
      const peer = this.peers.get(from);
      if (peer?.status !== 'authentic') return failed;
      /** @type {Uint8Array|null} */
      let plain = null;
      let seq = 0;
      const priv = /^p(\d{1,15})\.(.*)$/.exec(sealed);
      const group = /^g(\d{1,20})\.(\d{1,15})\.(.*)$/.exec(sealed);
      if (isPrivate && priv) {
        seq = Number(priv[1]);
        plain = await this.unwrap(/** @type {CryptoKey} */ (peer.pairKey), priv[2], utf8.encode(`${TAG} private|${this.room}|${from}|${me}|${seq}`));
      } else if (!isPrivate && group) {
        const kid = BigInt(group[1]);
        seq = Number(group[2]);
        if (splitKid(kid).pid !== from) return failed;
        const key = await this.receivedKey(kid);
        if (key) plain = await this.unwrap(await chatKey(key), group[3], utf8.encode(`${TAG} chat|${this.room}|${from}|${kid}|${seq}`));
      }
      if (!plain) return failed;
      /** @type {Opened} */
      const replayed = { replayed: true };
      if (seq <= peer.chatSeq) return replayed;
      peer.chatSeq = seq;
      /** @type {Opened} */
      const opened = { text: utf8d.decode(plain) };
      return opened;
    }).then((r) => r ?? failed, () => failed);
  }

  /** A sender's base key for `kid`, ratcheting forward from one we hold. @param {bigint} kid */
  async receivedKey(kid) {
    return (await baseFor(this.received, kid, MAX_STEP)) ?? null;
  }

  // ---- safety code, mismatch ----

  /** Our key and every authentic peer's, by id. */
  authenticKeys() {
    /** @type {Map<number, string>} */
    const keys = new Map([[/** @type {number} */ (this.you), this.pubText]]);
    for (const [pid, p] of this.peers) if (p.status === 'authentic') keys.set(pid, p.pubText);
    return keys;
  }

  /**
   * Our secret is not this meeting's: nobody's link ever checked out, and
   * of those who were here when we came at least one failed and none is
   * still to answer (or the wait is over). Once anyone's checked out,
   * never (a hostile participant's failures must not throw us out).
   */
  checkMismatch() {
    if (this.mismatchReported || this.everAuthentic) return;
    const present = [...this.peers.values()].filter((p) => p.present);
    if (!present.some((p) => p.status === 'failed')) return;
    if (!this.waited && present.some((p) => p.status === 'pending')) return;
    this.mismatchReported = true;
    this.sink.mismatch();
  }

  stopTimers() {
    for (const t of [this.deliveryTimer, this.rotationTimer, this.switchTimer, this.answerTimer]) if (t !== null) this.timers.clearTimeout(t);
    this.deliveryTimer = this.rotationTimer = this.switchTimer = this.answerTimer = null;
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

/** @param {boolean} present @param {number} knownAt @returns {Peer} */
function newPeer(present, knownAt) {
  return {
    pub: null, pubText: '', nonce: '', status: 'pending', pairKey: null, present, knownAt, hasKey: false,
    early: [], gens: [], compared: null, chatSeq: 0,
  };
}

/** Whether generation `a` is older than `b` (generations wrap at 2^16). @param {number} a @param {number} b */
function isOlder(a, b) {
  const d = (b - a) & GEN_MASK;
  return d !== 0 && d < 0x8000;
}

/** @param {unknown} v @param {number} max @returns {v is string} */
function isText(v, max) {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}

/** The chat key of a media base key. @param {Uint8Array} base */
async function chatKey(base) {
  const prk = await hkdfExtract(SHA256, new Uint8Array(0), base);
  const bytes = await hkdfExpand(SHA256, prk, utf8.encode(`${TAG} chat`), 16);
  return subtle.importKey('raw', /** @type {BufferSource} */ (bytes), 'AES-GCM', false, ['encrypt', 'decrypt']);
}
