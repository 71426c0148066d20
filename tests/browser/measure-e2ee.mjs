// What end-to-end encryption costs: the same 3-person meeting (fake 720p
// camera and microphone, all three in one browser) with and without E2EE,
// alternated in one run. For each: the browser's CPU (all its processes,
// from /proc), the server's, frames decoded per second, and, with E2EE, the
// frame worker's SFrame time per frame (its counters). Not a test: it
// asserts nothing and prints figures for docs/benchmarks.md.
//
//   cargo build --release --bin aconfi
//   ACONFI_BIN=target/release/aconfi node tests/browser/measure-e2ee.mjs [chromium|firefox] [rounds] [seconds]

// A camera's usual rate, not the tests' 15 (browsers.mjs reads it at launch).
process.env.ACONFI_FAKE_FPS ??= '30';
import { readFileSync, readdirSync } from 'node:fs';
import { launch } from './browsers.mjs';
import { everyoneSeesEveryone, freshRoom, startServer } from './harness.mjs';

const kind = /** @type {'chromium'|'firefox'} */ (process.argv[2] ?? 'chromium');
const ROUNDS = Number(process.argv[3] ?? 2);
const WINDOW_S = Number(process.argv[4] ?? 20);
const TICKS_PER_S = 100; // Linux USER_HZ
const exe = kind === 'chromium' ? '/usr/lib/chromium/chromium' : '/usr/lib/firefox-esr/firefox-esr';

/** CPU ticks (user + system) of processes matching `pred`. @param {(pid: number, cmd: string) => boolean} pred */
function ticks(pred) {
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (!pred(Number(d), cmd)) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += Number(f[11]) + Number(f[12]);
    } catch { /* the process ended meanwhile */ }
  }
  return sum;
}

const server = await startServer(['--log', 'info']);
const driver = await launch(kind);
const browserTicks = () => ticks((_, cmd) => cmd.startsWith(exe));
const serverTicks = () => ticks((pid) => pid === server.proc.pid);

/** @param {boolean} e2ee */
async function run(e2ee) {
  const room = freshRoom('cost');
  const frag = e2ee ? '#key=q2Xk0mVw9rT4yB1nC8eLpA&' : '#';
  const people = [];
  for (const name of ['A', 'B', 'C']) people.push(await driver.open(`${server.origin}/${room}${frag}name=${name}&autojoin=1`));
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  await everyoneSeesEveryone(people, ids);
  await new Promise((r) => setTimeout(r, 5000)); // let bitrates settle
  const decoded = async () => (await Promise.all(people.map((p) => p.stats())))
    .flatMap((s) => Object.values(s)).reduce((n, x) => n + x.framesDecoded, 0);
  const counters = () => Promise.all(people.map((p) => p.evaluate(() => /** @type {any} */ (window).aconfi.frames?.counters() ?? {})));
  const [b0, s0, d0, c0] = [browserTicks(), serverTicks(), await decoded(), await counters()];
  await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
  const [b1, s1, d1, c1] = [browserTicks(), serverTicks(), await decoded(), await counters()];
  for (const p of people) await p.close();
  /** Per-frame SFrame time and frame size over the window, by stream kind. */
  const perFrame = {};
  for (const [i, after] of c1.entries()) {
    for (const [id, c] of Object.entries(after)) {
      const kindOf = id.startsWith('send-') ? `send-${id.split('-')[1]}` : `receive-${id.split('-')[2]}`;
      const b = c0[i][id] ?? { frames: 0, bytes: 0, cryptoMs: 0 };
      const e = perFrame[kindOf] ??= { frames: 0, bytes: 0, ms: 0 };
      e.frames += c.frames - b.frames;
      e.bytes += c.bytes - b.bytes;
      e.ms += c.cryptoMs - b.cryptoMs;
    }
  }
  return {
    browserCpu: ((b1 - b0) / TICKS_PER_S / WINDOW_S) * 100,
    serverCpu: ((s1 - s0) / TICKS_PER_S / WINDOW_S) * 100,
    framesPerSecond: (d1 - d0) / WINDOW_S,
    perFrame,
  };
}

const results = { plain: [], e2ee: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const e2ee of [false, true]) {
    const x = await run(e2ee);
    results[e2ee ? 'e2ee' : 'plain'].push(x);
    console.error(`round ${r + 1} ${e2ee ? 'e2ee ' : 'plain'}: browser ${x.browserCpu.toFixed(0)} %, server ${x.serverCpu.toFixed(1)} %, ${x.framesPerSecond.toFixed(0)} frames/s decoded`);
  }
}
await driver.close();
await server.stop();

/** @param {number[]} xs */
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`| ${kind}, 3 people | browser CPU (% of a core) | server CPU | frames decoded/s (all receivers) |`);
console.log('|---|---|---|---|');
for (const [mode, xs] of Object.entries(results)) {
  console.log(`| ${mode} | ${mean(xs.map((x) => x.browserCpu)).toFixed(0)} % (${xs.map((x) => x.browserCpu.toFixed(0)).join(', ')}) | ${mean(xs.map((x) => x.serverCpu)).toFixed(1)} % | ${mean(xs.map((x) => x.framesPerSecond)).toFixed(0)} |`);
}
console.log('\n| stream | frames | mean frame size | SFrame time per frame |');
console.log('|---|---|---|---|');
const merged = {};
for (const x of results.e2ee) {
  for (const [k, v] of Object.entries(x.perFrame)) {
    const m = merged[k] ??= { frames: 0, bytes: 0, ms: 0 };
    m.frames += v.frames; m.bytes += v.bytes; m.ms += v.ms;
  }
}
for (const [k, v] of Object.entries(merged).sort()) {
  if (v.frames === 0) continue;
  console.log(`| ${k} | ${v.frames} | ${(v.bytes / v.frames).toFixed(0)} B | ${((v.ms / v.frames) * 1000).toFixed(0)} µs |`);
}
