// Live streaming end to end: a real nginx RTMP ingest on loopback, the real
// aconfi server with its real aconfi-stream worker (GStreamer), Chromium and
// Firefox in one meeting. The moderator goes live through the UI; the
// published stream is read back with ffprobe/ffmpeg and checked as YouTube
// would take it (H.264 1280x720 ~30 fps, AAC 48 kHz, keyframes <= 2 s,
// audible); everyone sees LIVE, a non-moderator is refused, the ingest
// dying and coming back resumes the stream by itself, stop ends the publish,
// the room emptying ends the worker, and the key is in no log.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { launch } from './browsers.mjs';
import { artifacts, assertCleanPages, assertLogKeepsSecrets, freshRoom, repoRoot, startServer, until } from './harness.mjs';

const run = promisify(execFile);

/** A free TCP port on loopback. @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/**
 * nginx's publish hooks as events: `next(call, key)` resolves when nginx
 * reports that call (`publish` / `publish_done`) for that stream key.
 */
function hookServer() {
  /** @type {Array<{call: string, name: string}>} */
  const seen = [];
  /** @type {Array<() => void>} */
  let waiters = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      seen.push({ call: form.get('call') ?? '', name: form.get('name') ?? '' });
      res.end('ok');
      for (const w of waiters) w();
    });
  });
  return {
    server,
    /** How many times nginx said `call` for `key`. @param {string} call @param {string} key */
    count: (call, key) => seen.filter((e) => e.call === call && e.name === key).length,
    /** Resolves once nginx has said `call` for `key` more than `already` times. */
    next(/** @type {string} */ call, /** @type {string} */ key, /** @type {number} */ already, ms = 60000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (seen.filter((e) => e.call === call && e.name === key).length > already) {
            clearTimeout(timer);
            waiters = waiters.filter((w) => w !== check);
            resolve(undefined);
          }
        };
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== check);
          reject(new Error(`nginx did not report ${call} within ${ms} ms`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
  };
}

const ctx = /** @type {any} */ ({});
const KEY = `key-${Math.random().toString(36).slice(2, 12)}-secret`;

/** Starts nginx on the ports in ctx; resolves once it accepts RTMP connections. */
async function startIngest() {
  const proc = spawn('bash', [path.join(repoRoot, 'tests/ingest/nginx.sh'), ctx.ingestDir, String(ctx.rtmpPort),
    String(ctx.rtmpsPort), ctx.hookUrl], { stdio: ['ignore', 'inherit', 'inherit'] });
  await until(() => new Promise((resolve) => {
    const c = net.connect(ctx.rtmpPort, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }), 'nginx accepts RTMP', 20000);
  return proc;
}

before(async () => {
  ctx.ingestDir = mkdtempSync(path.join(os.tmpdir(), 'aconfi-ingest-'));
  ctx.hooks = hookServer();
  await new Promise((r) => ctx.hooks.server.listen(0, '127.0.0.1', r));
  ctx.hookUrl = `http://127.0.0.1:${ctx.hooks.server.address().port}`;
  ctx.rtmpPort = await freePort();
  ctx.rtmpsPort = await freePort();
  ctx.nginx = await startIngest();
  // The test ingest is nginx on this machine: the operator allows it.
  ctx.server = await startServer(['--stream-allow-host', '127.0.0.1']);
  ctx.chromium = await launch('chromium');
  ctx.firefox = await launch('firefox');
});

after(async () => {
  // Kept for a failure's post-mortem (it holds no name, key or address: test 2 checks).
  if (ctx.server) writeFileSync(path.join(artifacts, 'streaming-server.log'), ctx.server.log());
  await ctx.chromium?.close();
  await ctx.firefox?.close();
  await ctx.server?.stop();
  ctx.nginx?.kill('SIGKILL');
  ctx.hooks?.server.close();
  if (ctx.ingestDir) rmSync(ctx.ingestDir, { recursive: true, force: true });
});

/**
 * Replaces the camera with a canvas of one colour (red for names starting
 * with R, blue otherwise), so the stream shows whose picture is in it.
 * Runs in the page before its scripts.
 */
function colourCamera() {
  // Init scripts run in every new document, also the blank one Firefox
  // makes when a page with Cross-Origin-Opener-Policy moves it to a fresh
  // browsing context group: that one has no camera to replace.
  if (!navigator.mediaDevices) return;
  const red = /name=R/.test(location.hash);
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const got = await real(constraints);
    if (!constraints?.video) return got;
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 480;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    let n = 0;
    setInterval(() => {
      g.fillStyle = red ? '#e00000' : '#0000e0';
      g.fillRect(0, 0, 640, 480);
      g.fillStyle = '#ffffff';
      g.fillRect((n++ * 8) % 600, 20, 40, 40); // moving, so the encoder sends frames
    }, 33);
    const track = canvas.captureStream(30).getVideoTracks()[0];
    for (const t of got.getVideoTracks()) { got.removeTrack(t); t.stop(); }
    got.addTrack(track);
    return got;
  };
}

const streamAt = () => `rtmp://127.0.0.1:${ctx.rtmpPort}/live/${KEY}`;

/** ffprobe of the published stream: its streams and ~6 s of video frames' key flags and times. */
async function probe() {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-rw_timeout', '15000000', '-read_intervals', '%+6',
    '-show_streams', '-show_entries', 'frame=key_frame,pts_time,best_effort_timestamp_time,media_type',
    '-of', 'json', streamAt()], { timeout: 60000, maxBuffer: 64 << 20 });
  return JSON.parse(stdout);
}

/** Fraction of red-dominant and blue-dominant pixels of one decoded frame. */
async function colours() {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-rw_timeout', '15000000', '-i', streamAt(), '-frames:v', '1',
    '-vf', 'scale=64:36', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { timeout: 60000, encoding: 'buffer', maxBuffer: 1 << 20 });
  let red = 0;
  let blue = 0;
  const px = stdout.length / 3;
  for (let i = 0; i < stdout.length; i += 3) {
    const [r, g, b] = [stdout[i], stdout[i + 1], stdout[i + 2]];
    if (r > 150 && g < 80 && b < 80) red++;
    if (b > 150 && r < 80 && g < 80) blue++;
  }
  return { red: red / px, blue: blue / px };
}

/** Loudness of ~4 s of the published audio (dB). */
async function loudness() {
  const { stderr } = await run('ffmpeg', ['-hide_banner', '-rw_timeout', '15000000', '-i', streamAt(), '-t', '4',
    '-vn', '-af', 'volumedetect', '-f', 'null', '-'], { timeout: 60000 });
  const max = Number(/max_volume: (-?[\d.]+) dB/.exec(stderr)?.[1]);
  return { max };
}

/** PIDs of aconfi-stream processes whose parent is the server. */
/** The streaming workers `server` runs. @param {{proc: import('node:child_process').ChildProcess}} [server] */
function workers(server = ctx.server) {
  const out = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = /\((.*)\)/.exec(stat)?.[1];
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm?.startsWith('aconfi-stream') && ppid === server.proc.pid) out.push(Number(pid));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** @param {import('./browsers.mjs').Participant} p */
const liveState = (p) => p.attr('#live-badge', 'data-state');

test('a moderator goes live through the UI; the ingest gets 720p30 H.264 + AAC of the meeting; everyone sees LIVE', async () => {
  const { server, chromium, firefox, hooks } = ctx;
  const room = freshRoom('live');
  // A newcomer's prejoin screen says nothing while nobody streams.
  const rosa = await chromium.open(`${server.origin}/${room}#name=Rosa&autojoin=1`, { init: colourCamera });
  const rosaId = await rosa.joined();
  const ben = await firefox.open(`${server.origin}/${room}#name=Ben&autojoin=1&camera=off`, { init: colourCamera });
  await ben.joined();
  await until(async () => (await ben.stats())[rosaId]?.framesDecoded > 10, 'Ben sees Rosa');
  // (Under "more" in the toolbar.)
  await rosa.click('#more-btn');
  await ben.click('#more-btn');
  assert.ok(await rosa.isVisible('#stream-btn'), 'the moderator has "Live stream"');
  assert.ok(!(await ben.isVisible('#stream-btn')), 'others do not');
  await ben.click('#more-btn');

  // A non-moderator's stream_start, sent by hand, is refused.
  await ben.evaluate(() => {
    const m = /** @type {any} */ (window).aconfi;
    m.addEventListener('notice', (/** @type {any} */ e) => { if (e.detail.kind === 'refused') /** @type {any} */ (window).refusal = e.detail; });
    m.startStream('rtmp://127.0.0.1:1/live/not-mine');
  });
  const refusal = await until(() => ben.evaluate(() => /** @type {any} */ (window).refusal), 'refusal');
  assert.deepEqual(refusal.request, 'stream_start');
  assert.match(refusal.message, /only moderators/);

  // The moderator goes live: the dialog, the key, "Go live".
  const published = hooks.count('publish', KEY);
  await rosa.click('#stream-btn');
  assert.equal(await rosa.evaluate(() => /** @type {HTMLInputElement} */ (document.getElementById('stream-ingest')).value),
    'rtmps://a.rtmps.youtube.com/live2', 'YouTube is prefilled');
  await rosa.fill('#stream-ingest', `rtmp://127.0.0.1:${ctx.rtmpPort}/live`);
  await rosa.fill('#stream-key', KEY);
  await rosa.click('#stream-go');
  await hooks.next('publish', KEY, published);
  for (const p of [rosa, ben]) {
    await until(async () => (await liveState(p)) === 'live', `LIVE at ${p}`);
    assert.equal(await p.text('#live-badge'), 'LIVE');
  }
  assert.equal(await rosa.evaluate(() => /** @type {HTMLInputElement} */ (document.getElementById('stream-key')).value), '',
    'the key is not kept in the page');

  // Someone about to join is told on the prejoin screen.
  const carl = await chromium.open(`${server.origin}/${room}`);
  await carl.waitFor('#prejoin-live');
  assert.match(await carl.text('#prejoin-live') ?? '', /streamed live/);
  await carl.close();

  // What the ingest receives is what YouTube takes.
  const info = await probe();
  const video = info.streams.find((/** @type {any} */ s) => s.codec_type === 'video');
  const audio = info.streams.find((/** @type {any} */ s) => s.codec_type === 'audio');
  assert.equal(video.codec_name, 'h264');
  assert.equal(video.width, 1280);
  assert.equal(video.height, 720);
  const [num, den] = video.avg_frame_rate.split('/').map(Number);
  assert.ok(Math.abs(num / den - 30) < 1.5, `about 30 fps: ${video.avg_frame_rate}`);
  assert.equal(audio.codec_name, 'aac');
  assert.equal(Number(audio.sample_rate), 48000);
  const frames = info.frames.filter((/** @type {any} */ f) => f.media_type === 'video');
  const keys = frames.filter((/** @type {any} */ f) => f.key_frame === 1)
    .map((/** @type {any} */ f) => Number(f.pts_time ?? f.best_effort_timestamp_time));
  assert.ok(keys.length >= 2, `keyframes seen: ${keys}`);
  // The worker asks for one every 60 frames (2 s at 30 fps, as YouTube
  // recommends); on a machine too busy to composite every frame they come
  // further apart, and YouTube takes up to 4 s.
  for (let i = 1; i < keys.length; i++) assert.ok(keys[i] - keys[i - 1] <= 4, `keyframes at most 4 s apart: ${keys}`);
  const { max } = await loudness();
  assert.ok(max > -40, `the fake microphone's beep is heard: max ${max} dB`);

  // Rosa's red picture is in it; Ben's blue one appears when he turns his camera on.
  const before = await colours();
  assert.ok(before.red > 0.1 && before.blue < 0.01, `only Rosa: ${JSON.stringify(before)}`);
  await ben.click('#cam');
  const both = await until(async () => { const c = await colours(); return c.blue > 0.1 && c; }, 'Ben appears in the stream', 60000);
  assert.ok(both.red > 0.1, `Rosa still there: ${JSON.stringify(both)}`);

  // The ingest dies and comes back: the stream resumes without anyone acting.
  ctx.nginx.kill('SIGKILL');
  await until(async () => (await liveState(rosa)) === 'reconnecting', 'the moderator sees reconnecting', 60000);
  assert.equal(await rosa.text('#live-badge'), 'LIVE · reconnecting…');
  const again = hooks.count('publish', KEY);
  ctx.nginx = await startIngest();
  await hooks.next('publish', KEY, again, 90000);
  await until(async () => (await liveState(ben)) === 'live', 'live again for everyone', 30000);
  const resumed = await probe();
  assert.equal(resumed.streams.find((/** @type {any} */ s) => s.codec_type === 'video').width, 1280);

  // Stop: the publish ends at the ingest and LIVE goes for everyone.
  const done = hooks.count('publish_done', KEY);
  await rosa.click('#stream-btn');
  assert.match(await rosa.text('#stream-status') ?? '', /live/);
  await rosa.click('#stream-stop');
  await hooks.next('publish_done', KEY, done);
  for (const p of [rosa, ben]) await until(async () => (await liveState(p)) === 'stopped', `LIVE gone at ${p}`);
  assert.ok(!(await ben.isVisible('#live-badge')));
  await until(() => workers().length === 0, 'the worker ends after stop');

  assertCleanPages([rosa, ben], server.origin);
  for (const p of [rosa, ben]) await p.close();
});

/**
 * Goes live through `p`'s dialog with the stream key pasted into the URL
 * field; resolves once the ingest saw the publish and the page says live.
 * @param {import('./browsers.mjs').Participant} p @param {string} key
 */
async function goLiveWithKeyInUrl(p, key) {
  const published = ctx.hooks.count('publish', key);
  await p.click('#stream-btn');
  await p.fill('#stream-ingest', `rtmp://127.0.0.1:${ctx.rtmpPort}/live/${key}`);
  await p.click('#stream-go');
  await ctx.hooks.next('publish', key, published);
  await until(async () => (await liveState(p)) === 'live', 'live');
}

test('the stream ends with the meeting: the last one out stops the worker; the key is in no log', async () => {
  const { server, chromium, firefox, hooks } = ctx;
  const room = freshRoom('live-end');
  const fay = await firefox.open(`${server.origin}/${room}#name=Fay&autojoin=1`);
  await fay.joined();
  // Firefox's UI this time, with the key pasted into the URL field.
  await goLiveWithKeyInUrl(fay, KEY);
  assert.equal(workers().length, 1, 'one worker for the meeting');

  const done = hooks.count('publish_done', KEY);
  await fay.click('#leave');
  await hooks.next('publish_done', KEY, done);
  await until(() => workers().length === 0, 'the worker is gone with the meeting');
  await fay.close();

  // At debug, with the worker's own output passed through: no key.
  assertLogKeepsSecrets(server.log(), [KEY, 'Rosa', 'Ben', 'Fay']);
  assert.match(server.log(), /live streaming available/, 'the server found its worker');
});

test('a server stopped with SIGTERM ends the live stream cleanly first: the ingest sees the publish end', async () => {
  const { chromium, hooks } = ctx;
  // A server of its own, to stop.
  const server = await startServer(['--stream-allow-host', '127.0.0.1']);
  const key = `${KEY}-sigterm`;
  const room = freshRoom('live-stop');
  const mo = await chromium.open(`${server.origin}/${room}#name=Mo&autojoin=1`);
  await mo.joined();
  await goLiveWithKeyInUrl(mo, key);
  const pids = workers(server);
  assert.equal(pids.length, 1, 'its worker runs');

  const done = hooks.count('publish_done', key);
  await server.stop();
  assert.equal(server.proc.exitCode, 0, 'the server exited cleanly');
  // The publish ended (the server stops its workers before it exits) and
  // no worker is left behind.
  await hooks.next('publish_done', key, done, 15000);
  const alive = (/** @type {number} */ pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  assert.deepEqual(pids.filter(alive), [], 'no worker left behind');
  await mo.close();
});
