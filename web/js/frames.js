// Encoded-frame transforms: every encoded audio/video frame a sender sends
// or a receiver gets passes through a worker (frame-worker.js) before it is
// packetized or decoded; in an end-to-end encrypted meeting the worker
// encrypts and decrypts them (SFrame) with the keys handed to it here.
// No DOM here.
//
// Browsers offer two APIs for it, found by feature detection, never by the
// user agent:
// - `RTCRtpSender/Receiver.createEncodedStreams()` (Chromium only), the
//   path Chromium-based clients keep using because its script transform
//   has had intermittent failures;
// - the standard `RTCRtpScriptTransform` (Firefox, Safari 15.4+, Chrome 141+).

/** @typedef {'encoded-streams'|'script-transform'} FrameApi */

/**
 * The frame transform API this browser offers, preferring
 * `createEncodedStreams` where it exists; null if there is none.
 * @returns {FrameApi|null}
 */
export function frameApi() {
  if (typeof RTCRtpSender !== 'undefined' && 'createEncodedStreams' in RTCRtpSender.prototype) return 'encoded-streams';
  if (typeof RTCRtpScriptTransform === 'function') return 'script-transform';
  return null;
}

/**
 * What a peer connection needs at construction for `api`: older Chromium
 * refuses `createEncodedStreams` unless asked for up front.
 * @param {FrameApi|null} api
 * @returns {Record<string, unknown>}
 */
export const peerConnectionOptions = (api) => (api === 'encoded-streams' ? { encodedInsertableStreams: true } : {});

/**
 * Per stream: frames and bytes seen; frames dropped (no key, or failing to
 * authenticate); time spent in SFrame.
 * @typedef {{frames: number, bytes: number, dropped: number, noKey: number, failed: number, cryptoMs: number}} FrameCounter
 */

/** One worker that the frames of many senders and receivers go through. */
export class FrameTransforms {
  /** @param {FrameApi} api */
  constructor(api) {
    this.api = api;
    // A module worker: it imports the SFrame module.
    this.worker = new Worker('/static/js/frame-worker.js', { type: 'module' });
    /** @type {Array<(c: Record<string, FrameCounter>) => void>} */
    this.waiting = [];
    this.worker.onmessage = (ev) => {
      if (ev.data?.op === 'counters') for (const resolve of this.waiting.splice(0)) resolve(ev.data.counters);
    };
  }

  /**
   * Routes the encoded frames of `target` through the worker. Call it for
   * a sender before it sends and for a receiver in `ontrack`, before
   * frames arrive.
   * @param {RTCRtpSender|RTCRtpReceiver} target
   * @param {{id: string, direction: 'send'|'receive', kind: string, participant?: number, sframe?: boolean}} options
   *   `sframe`: encrypt (send) or decrypt (receive) every frame; a
   *   receiver names the `participant` whose frames it carries
   */
  attach(target, options) {
    if (this.api === 'script-transform') {
      target.transform = new RTCRtpScriptTransform(this.worker, options);
      return;
    }
    const { readable, writable } = /** @type {any} */ (target).createEncodedStreams();
    this.worker.postMessage({ op: 'attach', readable, writable, options }, [readable, writable]);
  }

  /** Our media is encrypted with this key from now on. @param {bigint} kid @param {Uint8Array} key */
  setSendKey(kid, key) {
    this.worker.postMessage({ op: 'send-key', kid: String(kid), key });
  }

  /** Frames of a sender may carry this key (or its ratchet). @param {bigint} kid @param {Uint8Array} key */
  addReceiveKey(kid, key) {
    this.worker.postMessage({ op: 'receive-key', kid: String(kid), key });
  }

  /** A sender left; its keys go once late frames are through. @param {number} participant */
  forget(participant) {
    this.worker.postMessage({ op: 'forget', participant });
  }

  /**
   * Frames and bytes that went through, per attached stream id.
   * @returns {Promise<Record<string, FrameCounter>>}
   */
  counters() {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.worker.postMessage({ op: 'counters' });
    });
  }

  close() {
    this.worker.terminate();
  }
}
