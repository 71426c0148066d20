// The README's screenshots, taken from the real server in Chromium: the
// landing page, the prejoin screen and a meeting of three (Ada, Ben and
// Cleo), each on a desktop (1280×800) and a phone (390×844), in English.
// The meeting is started as a user starts one (Start meeting: end-to-end
// encrypted) and shot once everyone's video decodes. Each camera is a
// canvas drawing a figure on the person's own colour, so the tiles are
// told apart at a glance. Written to test-artifacts/screenshots/; with
// UPDATE_SCREENSHOTS=1 to docs/screenshots/ (the README's), so that a test
// run leaves the tree as it was.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './browsers.mjs';
import { assertCleanPages, repoRoot, startServer, until } from './harness.mjs';

const OUT = process.env.UPDATE_SCREENSHOTS === '1'
  ? path.join(repoRoot, 'docs/screenshots')
  : path.join(repoRoot, 'test-artifacts/screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('./browsers.mjs').Driver} */
let chromium;
before(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer();
  chromium = await launch('chromium');
});
after(async () => {
  await chromium?.close();
  await server?.stop();
});

/**
 * Replaces the camera with a 1280×720 canvas: a head and shoulders on a
 * soft background of hue `hue`, breathing a little (a picture that moves,
 * so the encoder keeps sending). Runs in the page before its scripts.
 * @param {number} hue
 */
function personCamera(hue) {
  if (!navigator.mediaDevices) return;
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const got = await real(constraints);
    if (!constraints?.video) return got;
    // The canvas stands in for the camera it replaces (so the prejoin
    // screen's camera list shows that camera chosen).
    const deviceId = got.getVideoTracks()[0]?.getSettings().deviceId;
    for (const t of got.getVideoTracks()) { got.removeTrack(t); t.stop(); }
    const [w, h] = [1280, 720];
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    const start = performance.now();
    const draw = () => {
      const t = (performance.now() - start) / 1000;
      const sky = g.createLinearGradient(0, 0, w, h);
      sky.addColorStop(0, `hsl(${hue} 45% 62%)`);
      sky.addColorStop(1, `hsl(${hue + 40} 40% 38%)`);
      g.fillStyle = sky;
      g.fillRect(0, 0, w, h);
      // A window's light on the wall, drifting slowly.
      g.fillStyle = 'rgb(255 255 255 / .12)';
      g.fillRect(140 + 20 * Math.sin(t / 3), 90, 260, 340);
      const sway = 12 * Math.sin(t * 1.3);
      const rise = 6 * Math.sin(t * 2.1);
      g.fillStyle = `hsl(${hue + 180} 25% 22%)`;
      g.beginPath();
      g.ellipse(w / 2 + sway, h + 40, 330, 260 + rise, 0, Math.PI, 0);
      g.fill();
      g.fillStyle = `hsl(${hue + 20} 30% 80%)`;
      g.beginPath();
      g.arc(w / 2 + sway * 1.2, 330 + rise, 130, 0, 2 * Math.PI);
      g.fill();
    };
    setInterval(draw, 33);
    draw();
    for (const t of canvas.captureStream(30).getVideoTracks()) {
      const settings = t.getSettings.bind(t);
      t.getSettings = () => ({ ...settings(), deviceId });
      got.addTrack(t);
    }
    return got;
  };
}

/** @param {number} hue */
const camera = (hue) => `(${personCamera})(${hue})`;

/**
 * Saves a screenshot of the page as <name>.png in OUT and checks
 * it is a PNG of the viewport's size with something in it.
 * @param {import('./browsers.mjs').Participant} p @param {string} name @param {{width: number, height: number}} size
 */
async function shoot(p, name, size) {
  const file = path.join(OUT, `${name}.png`);
  // The focus ring and the caret are not part of the picture.
  await p.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.blur());
  await p.screenshot(file);
  const png = readFileSync(file);
  assert.ok(statSync(file).size > 8000, `${name}.png is ${statSync(file).size} bytes`);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${name}.png is a PNG`);
  assert.equal(png.toString('latin1', 12, 16), 'IHDR');
  assert.deepEqual({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }, size, `${name}.png's size`);
  console.log(`${name}.png: ${size.width}×${size.height}, ${png.length} bytes`);
}

/** Waits until the prejoin preview shows the camera and Join is ready. @param {import('./browsers.mjs').Participant} p */
const previewShows = (p) => until(() => p.evaluate(() => {
  const v = /** @type {HTMLVideoElement} */ (document.getElementById('preview'));
  return v.videoWidth > 0 && v.readyState >= 2 && !(/** @type {HTMLButtonElement} */ (document.getElementById('join-now'))).disabled;
}), 'the preview shows');

/**
 * Waits until `p` decodes the video of `n` others, its own picture plays,
 * the "connecting" banner is gone and every tile shows its connection.
 * @param {import('./browsers.mjs').Participant} p @param {number} n
 */
async function meetingReady(p, n) {
  await p.joined();
  /** @type {Record<number, any>} */
  let seen = {};
  const first = await until(async () => {
    seen = await p.stats();
    return Object.values(seen).filter((x) => x.framesDecoded > 0).length === n && seen;
  }, `video from ${n} others`, 60000).catch((e) => { throw new Error(`${e.message}; stats: ${JSON.stringify(seen)}`); });
  await until(async () => {
    const s = await p.stats();
    return Object.entries(first).every(([id, x]) => s[Number(id)]?.framesDecoded >= x.framesDecoded + 30);
  }, 'video keeps decoding', 60000);
  await p.waitFor('#banner', 'hidden');
  await until(() => p.evaluate(() => [...document.querySelectorAll('.tile')]
    .every((t) => /** @type {HTMLVideoElement} */ (t.querySelector('video')).videoWidth > 0
      && !(/** @type {HTMLElement} */ (t.querySelector('.quality'))).hidden)), 'every tile plays and shows its connection');
}

test('screenshots of landing, prejoin and meeting, on a desktop and a phone', async () => {
  const init = `try { localStorage.setItem('aconfi.lang', 'en'); } catch {} ${camera(210)}`;
  // Desktop: the landing page; Start meeting leads to the prejoin screen
  // of a new, end-to-end encrypted meeting.
  const ada = await chromium.open(`${server.origin}/`, { viewport: DESKTOP, init });
  await ada.waitFor('#landing');
  await shoot(ada, 'landing-desktop', DESKTOP);
  await ada.click('#start');
  await previewShows(ada);
  const link = await ada.evaluate(() => location.href);
  assert.match(link, /#key=/, 'an end-to-end encrypted meeting');
  await ada.fill('#name-input', 'Ada');
  await shoot(ada, 'prejoin-desktop', DESKTOP);

  const others = [];
  for (const [name, hue] of /** @type {const} */ ([['Ben', 30], ['Cleo', 140]])) {
    const p = await chromium.open(`${link}&autojoin=1&name=${name}`, { init: `try { localStorage.setItem('aconfi.lang', 'en'); } catch {} ${camera(hue)}` });
    await p.joined();
    others.push(p);
  }
  await ada.click('#join-now');
  await meetingReady(ada, 2);
  await shoot(ada, 'meeting-desktop', DESKTOP);
  await ada.close();

  // The phone: the same three screens.
  const landing = await chromium.open(`${server.origin}/`, { viewport: PHONE, init });
  await landing.waitFor('#landing');
  await shoot(landing, 'landing-phone', PHONE);
  await landing.close();
  const phone = await chromium.open(link, { viewport: PHONE, init });
  await previewShows(phone);
  await phone.fill('#name-input', 'Ada');
  await shoot(phone, 'prejoin-phone', PHONE);
  await phone.click('#join-now');
  await meetingReady(phone, 2);
  await shoot(phone, 'meeting-phone', PHONE);
  assertCleanPages([phone, ...others], server.origin);
  await phone.close();
  for (const p of others) await p.close();
});
