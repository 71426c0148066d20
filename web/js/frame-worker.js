// The worker every encoded frame passes through (see frames.js). It takes
// streams both ways browsers hand them over: the `rtctransform` event of
// RTCRtpScriptTransform and an `attach` message carrying the streams of
// createEncodedStreams.
//
// In an end-to-end encrypted meeting (`sframe` streams) each outgoing frame
// is encrypted with SFrame (RFC 9605) under the sender's current key and
// each incoming one decrypted with its sender's key; a frame that cannot
// be is dropped, never passed on in the clear or as noise. The codec bytes
// the packetizer, the decoder and the SFU read (the VP8 payload header, the
// Opus TOC byte) stay in the clear as SFrame metadata, covered by the tag.
// Keys come from the page (e2ee/session.js); this worker holds no other
// secret. Other streams pass unchanged. Every stream is counted.

import { ReceiveKeys, splitKid } from './e2ee/keystore.js';
import { MEDIA_SUITE, concat, decodeHeader, decrypt, encrypt, keyContext } from './e2ee/sframe.js';

const scope = /** @type {any} */ (self);

/**
 * @typedef {{frames: number, bytes: number, dropped: number, noKey: number, failed: number, cryptoMs: number}} Counter
 * @typedef {{id?: string, direction?: 'send'|'receive', kind?: string, participant?: number, sframe?: boolean}} StreamOptions
 */

/** @type {Map<string, Counter>} */
const counters = new Map();

// ---- keys ----

/** @type {{kid: bigint, ctx: import('./e2ee/sframe.js').KeyContext, ctr: bigint}|null} */
let sending = null;
let sendKeys = Promise.resolve();
/** Keys of the senders we receive, with their ratchets. */
const receiving = new ReceiveKeys();
/** The script-transform senders, to ask for a keyframe after a key change. @type {any[]} */
const senderTransformers = [];

/** @param {bigint} kid @param {Uint8Array} key */
async function setSendKey(kid, key) {
  const ctx = await keyContext(MEDIA_SUITE, kid, key);
  const newGeneration = sending !== null && splitKid(sending.kid).gen !== splitKid(kid).gen;
  sending = { kid, ctx, ctr: 0n };
  // After a new key, a keyframe lets everyone start clean where the
  // browser can be asked for one (Chrome's transformer cannot).
  if (newGeneration) for (const t of senderTransformers) t.generateKeyFrame?.().catch?.(() => {});
}

// ---- frames ----

/**
 * Bytes at the start of a frame left in the clear: the VP8 payload header
 * (10 bytes on a keyframe, 3 otherwise; bit 0 of the first byte is 0 on a
 * keyframe) and the Opus TOC byte. Computed from the clear bytes alone, so
 * a receiver finds the same number. Other video codecs keep nothing clear.
 * @param {string|undefined} kind @param {Uint8Array} data @param {any} frame
 */
function clearBytes(kind, data, frame) {
  if (kind === 'audio') return 1;
  const mime = frame.getMetadata?.().mimeType;
  // Safari gives no mimeType; A-Confi's server has every browser send VP8.
  if (mime !== undefined && mime.toLowerCase() !== 'video/vp8') return 0;
  return data.length > 0 && (data[0] & 0x01) === 0 ? 10 : 3;
}

/** @param {any} frame @param {StreamOptions} o @param {Counter} c */
async function seal(frame, o, c) {
  const s = sending;
  if (!s) return null;
  const data = new Uint8Array(frame.data);
  const n = Math.min(clearBytes(o.kind, data, frame), data.length);
  const ctr = s.ctr;
  s.ctr += 1n;
  const t0 = performance.now();
  const sframe = await encrypt(s.ctx, ctr, data.subarray(0, n), data.subarray(n));
  c.cryptoMs += performance.now() - t0;
  return concat(data.subarray(0, n), sframe);
}

/** @param {any} frame @param {StreamOptions} o @param {Counter} c */
async function open(frame, o, c) {
  const data = new Uint8Array(frame.data);
  const n = clearBytes(o.kind, data, frame);
  const h = decodeHeader(data, n);
  if (!h || h.length + n > data.length) return null;
  // Only the sender's own keys on its own track.
  if (splitKid(h.kid).pid !== o.participant) return null;
  const ctx = receiving.contextFor(h.kid);
  if (!ctx) {
    c.noKey += 1;
    return null;
  }
  const t0 = performance.now();
  try {
    const plain = await decrypt(await ctx, data.subarray(0, n), data.subarray(n));
    c.cryptoMs += performance.now() - t0;
    return concat(data.subarray(0, n), plain);
  } catch {
    c.failed += 1;
    return null;
  }
}

/**
 * @param {ReadableStream} readable @param {WritableStream} writable
 * @param {StreamOptions} [options] @param {any} [transformer]
 */
function pipe(readable, writable, options = {}, transformer) {
  const id = options.id ?? 'unnamed';
  const counter = counters.get(id) ?? { frames: 0, bytes: 0, dropped: 0, noKey: 0, failed: 0, cryptoMs: 0 };
  counters.set(id, counter);
  if (options.sframe && options.direction === 'send' && transformer) senderTransformers.push(transformer);
  readable
    .pipeThrough(new TransformStream({
      async transform(frame, controller) {
        counter.frames += 1;
        counter.bytes += frame.data.byteLength;
        if (!options.sframe) {
          controller.enqueue(frame);
          return;
        }
        const out = options.direction === 'send' ? await seal(frame, options, counter) : await open(frame, options, counter);
        if (!out) {
          counter.dropped += 1;
          return;
        }
        frame.data = out.buffer;
        controller.enqueue(frame);
      },
    }))
    .pipeTo(writable)
    // The pipe ends when its sender or receiver stops; nothing to do then.
    .catch(() => {});
}

scope.onrtctransform = (/** @type {any} */ ev) => {
  const t = ev.transformer;
  pipe(t.readable, t.writable, t.options, t);
};

/** A KID arrives as a decimal string. @param {unknown} s */
const kidFrom = (s) => (typeof s === 'string' && /^\d{1,20}$/.test(s) ? BigInt(s) : null);

scope.onmessage = (/** @type {MessageEvent} */ ev) => {
  const m = ev.data;
  switch (m?.op) {
    case 'attach':
      pipe(m.readable, m.writable, m.options);
      break;
    case 'send-key': {
      const kid = kidFrom(m.kid);
      // In order: a later key must not be overtaken by an earlier one.
      if (kid !== null && m.key instanceof Uint8Array) sendKeys = sendKeys.then(() => setSendKey(kid, m.key));
      break;
    }
    case 'receive-key': {
      const kid = kidFrom(m.kid);
      if (kid !== null && m.key instanceof Uint8Array) receiving.add(kid, m.key);
      break;
    }
    case 'forget':
      if (typeof m.participant === 'number') receiving.forget(m.participant);
      break;
    case 'counters':
      scope.postMessage({ op: 'counters', counters: Object.fromEntries(counters) });
      break;
    default:
      break;
  }
};
