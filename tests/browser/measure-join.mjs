// Measures, per browser, the time from opening a meeting link (with
// autojoin) to the first frame of a participant already in the room on the
// screen. Not a test: it asserts nothing and prints figures for
// docs/benchmarks.md.
//
//   cargo build --release --bin aconfi
//   ACONFI_BIN=target/release/aconfi node tests/browser/measure-join.mjs [runs]
//
// A Chromium participant is in the room with its camera on. For each
// browser, `runs` times, a fresh page (own context, nothing cached but the
// browser's own start-up) opens the link; an init script notes, in the
// page's clock (0 = navigation start), when the Meeting reports 'joined'
// and when the first remote video frame is presented
// (requestVideoFrameCallback). The page then leaves.
//
// CLUSTER=1: a Redis and two nodes instead of one server; the participant
// already there joined through node A (the room's home). Each browser then
// opens the link through node A and through node B in turn, and the table
// compares the two (through B, the join is sent on to A: `moved`, then a
// second WebSocket).

// A camera's usual rate, not the tests' 15 (browsers.mjs reads it at launch).
process.env.ACONFI_FAKE_FPS ??= '30';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { launch } from './browsers.mjs';
import { artifacts, freshRoom, startNode, startRedis, startServer, until } from './harness.mjs';

const RUNS = Number(process.argv[2] ?? 5);

/** Runs in the page before its scripts. */
function probe() {
  const w = /** @type {any} */ (window);
  w.joinProbe = { joined: null, firstFrame: null };
  const seen = new WeakSet();
  const watch = () => {
    const m = w.aconfi;
    if (w.joinProbe.joined === null && m?.state === 'joined') w.joinProbe.joined = performance.now();
    for (const v of document.querySelectorAll('.tile:not(.self) video')) {
      if (seen.has(v)) continue;
      seen.add(v);
      const first = () => { if (w.joinProbe.firstFrame === null) w.joinProbe.firstFrame = performance.now(); };
      if ('requestVideoFrameCallback' in v) /** @type {any} */ (v).requestVideoFrameCallback(first);
      else v.addEventListener('loadeddata', first, { once: true });
    }
  };
  // 'joined' has no DOM trace of its own: also look every few ms.
  setInterval(watch, 5);
  new MutationObserver(watch).observe(document, { childList: true, subtree: true });
}

/** @param {number[]} xs */
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

const cluster = Boolean(process.env.CLUSTER);
const redis = cluster ? await startRedis() : null;
const servers = redis ? [await startNode(redis, ['--log', 'info']), await startNode(redis, ['--log', 'info'])] : [await startServer(['--log', 'info'])];
const room = freshRoom('jointime');
/** Where the measured pages open the link: through each node in turn. */
const ways = cluster ? [['home node', servers[0]], ['other node', servers[1]]] : [['', servers[0]]];
const host = await launch('chromium');
const present = await host.open(`${servers[0].origin}/${room}#name=Host&autojoin=1`);
await present.joined();

/** @type {Record<string, {joined: number[], firstFrame: number[]}>} */
const results = {};
for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  const driver = await launch(kind);
  for (const [way] of ways) results[`${kind} ${way}`.trim()] = { joined: [], firstFrame: [] };
  // One unmeasured run warms the browser process (its first page loads
  // codecs and the fake devices); each measured run is a new context.
  for (let i = 0; i <= RUNS; i++) {
    for (const [way, server] of ways) {
      const r = results[`${kind} ${way}`.trim()];
      const p = await driver.open(`${server.origin}/${room}#name=Guest&autojoin=1`, { init: probe });
      const t = await until(() => p.evaluate(() => {
        const j = /** @type {any} */ (window).joinProbe;
        return j.firstFrame !== null && j.joined !== null && j;
      }), `first frame in ${kind}`, 60000);
      if (i > 0) {
        r.joined.push(Math.round(t.joined));
        r.firstFrame.push(Math.round(t.firstFrame));
      }
      await p.close();
      // The next run starts once the server has seen this one leave.
      await until(async () => (await present.evaluate(() => /** @type {any} */ (window).aconfi.participants.size)) === 0, 'guest gone');
    }
  }
  await driver.close();
}
await present.close();
await host.close();
for (const s of servers) await s.stop();
await redis?.stop();

const version = (/** @type {string} */ kind) => (kind === 'chromium' ? 'Chromium' : 'Firefox ESR');
const lines = [`| browser | joined (median) | first remote frame (median) | first remote frame, ${RUNS} runs |`, '|---|---|---|---|'];
for (const [label, r] of Object.entries(results)) {
  const [kind, ...way] = label.split(' ');
  lines.push(`| ${[version(kind), ...way].join(' ')} | ${median(r.joined)} ms | ${median(r.firstFrame)} ms | ${r.firstFrame.join(', ')} ms |`);
}
console.log(lines.join('\n'));
const out = path.join(artifacts, cluster ? 'join-time-cluster.json' : 'join-time.json');
writeFileSync(out, `${JSON.stringify({ runs: RUNS, results }, null, 2)}\n`);
console.log(`raw figures: ${out}`);
