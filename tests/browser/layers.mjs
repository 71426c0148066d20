// What the simulcast and bandwidth tests share: a 1280×720 canvas camera
// (the same in Chromium and Firefox), and reading from a page's own
// statistics which layer it sends and which width it decodes.

import { freshRoom, until } from './harness.mjs';

/**
 * Replaces the camera with a moving canvas, 1280×720 unless told otherwise
 * (the browsers' own fake cameras differ in size). Runs in the page before
 * its scripts.
 */
export function canvasCamera(width = 1280, height = 720) {
  if (!navigator.mediaDevices) return;
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const got = await real(constraints);
    if (!constraints?.video) return got;
    for (const t of got.getVideoTracks()) { got.removeTrack(t); t.stop(); }
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    let n = 0;
    const draw = () => {
      n += 1;
      // Moving detail, so the encoder has something to spend bits on.
      g.fillStyle = `hsl(${n % 360} 60% 40%)`;
      g.fillRect(0, 0, width, height);
      for (let i = 0; i < 40; i += 1) {
        g.fillStyle = `hsl(${(n * 7 + i * 37) % 360} 80% 60%)`;
        g.fillRect((n * 13 + i * 97) % width, (n * 5 + i * 53) % height, 90, 60);
      }
    };
    setInterval(draw, 33);
    draw();
    for (const t of canvas.captureStream(30).getVideoTracks()) got.addTrack(t);
    return got;
  };
}

/**
 * Makes the page's video senders offer H.264 only, as a browser without a
 * VP8 encoder would (standard `setCodecPreferences`). Runs in the page
 * before its scripts, after `canvasCamera`.
 */
export function onlyH264() {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (track, init) {
    const tx = add.call(this, track, init);
    const kind = typeof track === 'string' ? track : track.kind;
    const codecs = RTCRtpReceiver.getCapabilities('video')?.codecs ?? [];
    const h264 = codecs.filter((c) => /^video\/(h264|rtx)$/i.test(c.mimeType));
    if (kind === 'video' && h264.length > 0) tx.setCodecPreferences(h264);
    return tx;
  };
}

/**
 * The width of the frames each inbound camera video decodes, and how many
 * it decoded, by the sender's participant id (from the meeting's track map),
 * and the codec (MIME type) it arrives in.
 * @param {import('./browsers.mjs').Participant} p
 * @returns {Promise<{widths: Record<string, number>, decoding: Record<string, number>, codecs: Record<string, string>}>}
 */
export function receiving(p) {
  return p.evaluate(async () => {
    const m = /** @type {any} */ (window).aconfi;
    const stats = await m.pc.getStats();
    /** @type {Record<string, number>} */
    const widths = {};
    /** @type {Record<string, number>} */
    const decoding = {};
    /** @type {Record<string, string>} */
    const codecs = {};
    stats.forEach((/** @type {any} */ s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const info = m.tracks.get(s.mid);
      if (!info || info.screen) return;
      widths[info.participant] = s.frameWidth ?? 0;
      decoding[info.participant] = s.framesDecoded ?? 0;
      codecs[info.participant] = stats.get(s.codecId)?.mimeType ?? '';
    });
    return { widths, decoding, codecs };
  });
}

/**
 * Those of `ids` whose video tile on `p`'s page says it is paused for
 * bandwidth.
 * @param {import('./browsers.mjs').Participant} p @param {number[]} ids
 * @returns {Promise<number[]>}
 */
export function shownPaused(p, ids) {
  return p.evaluate((ids) => ids.filter((id) => document.querySelector(`.tile[data-participant="${id}"]`)?.classList.contains('bandwidth-paused')), ids);
}

/**
 * The rids a page sends, with the width encoded on each.
 * @param {import('./browsers.mjs').Participant} p
 * @returns {Promise<Record<string, number>>}
 */
export function sendingLayers(p) {
  return p.evaluate(async () => {
    const m = /** @type {any} */ (window).aconfi;
    const stats = await m.pc.getStats();
    /** @type {Record<string, number>} */
    const layers = {};
    stats.forEach((/** @type {any} */ s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) layers[s.rid] = s.frameWidth ?? 0;
    });
    return layers;
  });
}

/**
 * Waits until `p` decodes video from each of `ids` at a width that `ok`
 * accepts, and the frames keep coming.
 * @param {import('./browsers.mjs').Participant} p @param {number[]} ids
 * @param {(width: number) => boolean | Promise<boolean>} ok @param {string} what @param {number} [ms]
 */
export async function receives(p, ids, ok, what, ms = 60000) {
  /** @type {Record<string, number>} */
  let before = {};
  await until(async () => {
    const r = await receiving(p);
    let good = true;
    for (const id of ids) {
      good = good && (r.decoding[id] ?? 0) > (before[id] ?? 0) && await ok(r.widths[id] ?? 0);
    }
    before = r.decoding;
    return good;
  }, `${p.kind}: ${what}`, ms);
}

/** The width of `p`'s top layer now. @param {import('./browsers.mjs').Participant} p */
export async function topWidth(p) {
  return (await sendingLayers(p)).f ?? 0;
}

/**
 * A check that a width is `sender`'s top layer as it is sending it now
 * (within what its encoder may scale between the two looks). A sender
 * whose own uplink estimate has not grown to the top layer yet does not
 * send it: the check waits for that too, until its top layer is at least
 * `least` pixels wide.
 * @param {import('./browsers.mjs').Participant} sender @param {number} [least]
 */
export function isTopOf(sender, least = 640) {
  return async (/** @type {number} */ w) => {
    const top = await topWidth(sender);
    return top >= least && w >= top * 0.74;
  };
}

/**
 * Pins `id`'s tile on `p`'s page to a fixed size in CSS pixels (the page
 * reports the new size to the server like any layout change).
 * @param {import('./browsers.mjs').Participant} p @param {number} id @param {number} width
 */
export function tileWidth(p, id, width) {
  return p.evaluate(({ id, width }) => {
    const tile = /** @type {HTMLElement} */ (document.querySelector(`.tile[data-participant="${id}"]`));
    Object.assign(tile.style, {
      position: 'fixed', left: '0', top: '0', zIndex: '10', width: `${width}px`, height: `${Math.round(width * 9 / 16)}px`,
    });
  }, { id, width });
}

/**
 * People with canvas cameras and microphones off, joined to a fresh room in
 * this order; their pages and participant ids.
 * @param {string} origin @param {string} prefix
 * @param {[import('./browsers.mjs').Driver, string, {h264?: boolean, camera?: [number, number]}?][]} who
 *   browser, name and, where not the default, the camera's size and H.264 only
 */
export async function meeting(origin, prefix, who) {
  const link = `${origin}/${freshRoom(prefix)}#autojoin=1&mic=off`;
  const people = [];
  for (const [driver, name, o = {}] of who) {
    const camera = `(${canvasCamera})(${(o.camera ?? [1280, 720]).join(', ')});`;
    const init = o.h264 ? `${camera} (${onlyH264})();` : camera;
    people.push(await driver.open(`${link}&name=${name}`, { init }));
  }
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  return { people, ids };
}
