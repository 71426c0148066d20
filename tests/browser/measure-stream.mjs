// Measures the delay from a participant's camera to the live-stream ingest:
// a Chromium participant's camera (a canvas) turns from black to white at a
// moment the page notes in wall-clock time; ffmpeg reads the published
// stream back from a real nginx RTMP ingest on loopback and node notes when
// the picture turns bright. Also samples the worker's CPU and memory. Not
// a test: it asserts nothing and prints figures for docs/benchmarks.md.
//
//   cargo build --release --bin aconfi --bin aconfi-stream
//   ACONFI_BIN=target/release/aconfi node tests/browser/measure-stream.mjs [flips]
//
// The figure includes ffmpeg's own read and decode of the stream (run with
// no input buffering), so it is an upper bound of camera → ingest.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launch } from './browsers.mjs';
import { freshRoom, repoRoot, startServer, until } from './harness.mjs';

const FLIPS = Number(process.argv[2] ?? 6);
const KEY = `measure-${Date.now()}`;

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** The camera is a canvas, white while `window.bright` is set. Runs in the page. */
function switchableCamera() {
  const w = /** @type {any} */ (window);
  w.bright = false;
  // Not in the blank document Firefox makes before a COOP page.
  if (!navigator.mediaDevices) return;
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const got = await real(constraints);
    if (!constraints?.video) return got;
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 480;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    setInterval(() => { g.fillStyle = w.bright ? '#ffffff' : '#000000'; g.fillRect(0, 0, 640, 480); }, 10);
    const track = canvas.captureStream(30).getVideoTracks()[0];
    for (const t of got.getVideoTracks()) { got.removeTrack(t); t.stop(); }
    got.addTrack(track);
    return got;
  };
}

/** CPU seconds and RSS (MiB) of a process. @param {number} pid */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  return { cpu: ticks / 100, rss };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'aconfi-measure-'));
const rtmp = await freePort();
const nginx = spawn('bash', [path.join(repoRoot, 'tests/ingest/nginx.sh'), dir, String(rtmp), String(await freePort())],
  { stdio: 'inherit' });
await until(() => new Promise((resolve) => {
  const c = net.connect(rtmp, '127.0.0.1', () => { c.destroy(); resolve(true); });
  c.on('error', () => resolve(false));
}), 'nginx', 20000);
// The ingest is nginx on this machine: the operator allows it.
const server = await startServer(['--stream-allow-host', '127.0.0.1']);
const chromium = await launch('chromium');
try {
  const room = freshRoom('measure');
  const p = await chromium.open(`${server.origin}/${room}#name=M&autojoin=1`, { init: switchableCamera });
  await p.joined();
  await p.click('#stream-btn');
  await p.fill('#stream-ingest', `rtmp://127.0.0.1:${rtmp}/live`);
  await p.fill('#stream-key', KEY);
  await p.click('#stream-go');
  await until(async () => (await p.attr('#live-badge', 'data-state')) === 'live', 'live', 60000);

  // Frames of 16x9 grey pixels, as ffmpeg decodes them; the time each is seen.
  const reader = spawn('ffmpeg', ['-v', 'error', '-fflags', 'nobuffer', '-flags', 'low_delay', '-probesize', '32768',
    '-analyzeduration', '0', '-i', `rtmp://127.0.0.1:${rtmp}/live/${KEY}`, '-an', '-vf', 'scale=16:9',
    '-f', 'rawvideo', '-pix_fmt', 'gray', '-']);
  /** @type {Array<{at: number, mean: number}>} */
  const seen = [];
  let buf = Buffer.alloc(0);
  reader.stdout.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 144) {
      const frame = buf.subarray(0, 144);
      buf = buf.subarray(144);
      seen.push({ at: Date.now(), mean: frame.reduce((a, b) => a + b, 0) / 144 });
    }
  });
  await until(() => seen.length > 30, 'ffmpeg reads the stream', 30000);

  // The server's worker (not any other aconfi-stream on this machine).
  const worker = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).find((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid === server.proc.pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('aconfi-stream');
    } catch { return false; }
  });
  const u0 = worker ? usage(worker) : null;
  const t0 = Date.now();
  const delays = [];
  for (let i = 0; i < FLIPS; i++) {
    const bright = i % 2 === 0;
    const from = seen.length;
    const at = await p.evaluate((b) => { /** @type {any} */ (window).bright = b; return Date.now(); }, bright);
    const hit = await until(() => seen.slice(from).find((f) => (bright ? f.mean > 100 : f.mean < 60)), `flip ${i}`, 20000);
    delays.push(hit.at - at);
    await new Promise((r) => setTimeout(r, 2000));
  }
  const u1 = worker ? usage(worker) : null;
  reader.kill();
  delays.sort((a, b) => a - b);
  const median = delays[Math.floor(delays.length / 2)];
  console.log(`camera → ingest (read back by ffmpeg): median ${median} ms, min ${delays[0]} ms, max ${delays.at(-1)} ms over ${FLIPS} flips`);
  if (u0 && u1) {
    const core = (u1.cpu - u0.cpu) / ((Date.now() - t0) / 1000);
    console.log(`worker, 1 participant (640x480 canvas camera + Chromium's fake microphone): ${core.toFixed(2)} of a core, RSS ${u1.rss.toFixed(0)} MiB`);
  }
  await p.close();
} finally {
  await chromium.close();
  await server.stop();
  nginx.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
