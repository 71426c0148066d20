// Shared set-up for the browser tests: start the real aconfi binary on free
// ports, launch the browsers (browsers.mjs), and the checks every meeting
// test ends with (nothing from another origin, no script errors, a log that
// names no one).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { launch } from './browsers.mjs';
import { until } from './wait.mjs';

export { until };

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const artifacts = path.join(repoRoot, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });

const binary = process.env.ACONFI_BIN ?? path.join(repoRoot, 'target/debug/aconfi');

/** @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set();
// A test that fails before stopping its servers leaves them running, and a
// running child keeps its file from ending until the file's timeout (10
// min): stop them when the file's tests are done.
after(async () => { await Promise.all([...running].map(terminate)); });

/** SIGTERM, as a user stops the server; resolves when it has exited. */
async function terminate(/** @type {import('node:child_process').ChildProcess} */ proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

/**
 * Starts aconfi with HTTPS on loopback and media on every interface, as a
 * user runs it (free ports unless `extraArgs` names them); resolves once it
 * serves.
 * @param {string[]} [extraArgs]
 */
export async function startServer(extraArgs = []) {
  const defaults = { '--listen': '127.0.0.1:0', '--media-port': '0' };
  const args = [...extraArgs];
  for (const [flag, value] of Object.entries(defaults)) {
    if (!args.includes(flag)) args.push(flag, value);
  }
  const proc = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ACONFI_LOG: process.env.ACONFI_LOG ?? 'debug,str0m=debug,is=debug' },
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const onData = (/** @type {Buffer} */ d) => {
      log += d.toString();
      const m = log.match(/https:\/\/localhost:(\d+)/);
      if (m) resolve(Number(m[1]));
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`aconfi exited early (${code}):\n${log}`)));
  });
  return {
    proc,
    port,
    origin: `https://localhost:${port}`,
    log: () => log,
    async stop() {
      // For a failure's post-mortem: ACONFI_KEEP_LOGS=1 keeps the server's
      // debug log in test-artifacts/.
      if (process.env.ACONFI_KEEP_LOGS) writeFileSync(path.join(artifacts, `server-${port}.log`), log);
      await terminate(proc);
    },
  };
}

/** @returns {Promise<number>} a TCP port free right now */
export const freeTcpPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = /** @type {net.AddressInfo} */ (s.address());
    s.close(() => resolve(port));
  });
});

/** A redis-server of its own on a free port, persisting nothing; resolves once it accepts connections. */
export async function startRedis() {
  const port = await freeTcpPort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', os.tmpdir()], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let out = '';
  await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { out += d; if (out.includes('Ready to accept connections')) resolve(undefined); });
    proc.on('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  /** Every key and its value. @returns {[string, string][]} */
  const dump = () => execFileSync('redis-cli', ['-p', String(port), '--scan'], { encoding: 'utf8' })
    .split('\n').filter(Boolean)
    .map((k) => [k, execFileSync('redis-cli', ['-p', String(port), 'GET', k], { encoding: 'utf8' }).trim()]);
  /** Stops it; resolves when it has exited. */
  const stop = () => terminate(proc);
  return { url: `redis://127.0.0.1:${port}/`, dump, port, stop };
}

/** The secret the test clusters share. */
export const CLUSTER_SECRET = 'a cluster secret for the browser test';

/**
 * A node of the cluster in `redis` on a free port (or `port`).
 * @param {{url: string}} redis @param {string[]} [extraArgs] @param {number} [port]
 */
export async function startNode(redis, extraArgs = [], port = undefined) {
  const p = port ?? await freeTcpPort();
  return startServer(['--listen', `127.0.0.1:${p}`, '--public-url', `https://localhost:${p}`,
    '--redis-url', redis.url, '--cluster-secret', CLUSTER_SECRET, '--drain-seconds', '0', ...extraArgs]);
}

/**
 * Launches Chromium and Firefox for the tests of a file (before) and closes
 * them after; read them from the returned object inside tests, by kind.
 * @param {{firefoxDisplay?: boolean}} [opts] run Firefox in a window on Xvfb (for screen capture)
 */
export function bothBrowsers(opts = {}) {
  /** @type {Record<import('./browsers.mjs').BrowserKind, import('./browsers.mjs').Driver>} */
  const drivers = /** @type {any} */ ({});
  before(async () => {
    drivers.chromium = await launch('chromium');
    drivers.firefox = await launch('firefox', { display: opts.firefoxDisplay });
  });
  after(async () => {
    await drivers.chromium?.close();
    await drivers.firefox?.close();
  });
  return drivers;
}

/**
 * Starts one server and both browsers for the tests of a file (before) and
 * stops them after; read them from the returned object inside tests.
 * @param {{firefoxDisplay?: boolean}} [opts] run Firefox in a window on Xvfb (for screen capture)
 */
export function serverAndBrowsers(opts = {}) {
  /** @type {{server: Awaited<ReturnType<typeof startServer>>, chromium: import('./browsers.mjs').Driver, firefox: import('./browsers.mjs').Driver}} */
  const ctx = /** @type {any} */ (bothBrowsers(opts));
  before(async () => { ctx.server = await startServer(); });
  after(async () => { await ctx.server?.stop(); });
  return ctx;
}

/**
 * Everyone decodes video from and receives audio of every other id, and
 * both keep growing over a window (not one lucky sample).
 * @param {import('./browsers.mjs').Participant[]} people @param {number[]} ids
 */
export async function everyoneSeesEveryone(people, ids) {
  const othersOf = (/** @type {number} */ i) => ids.filter((_, j) => j !== i);
  const first = await Promise.all(people.map((p, i) => until(async () => {
    const s = await p.stats();
    return othersOf(i).every((o) => s[o]?.framesDecoded > 0 && s[o]?.audioPacketsReceived > 0) && s;
  }, `media at ${p} participant ${ids[i]}`, 60000)));
  await Promise.all(people.map((p, i) => until(async () => {
    const s = await p.stats();
    return othersOf(i).every((o) =>
      s[o].framesDecoded >= first[i][o].framesDecoded + 30
      && s[o].audioPacketsReceived >= first[i][o].audioPacketsReceived + 50);
  }, `media growing at ${p} participant ${ids[i]}`, 60000)));
}

/** A room name no other test uses. @param {string} prefix */
export const freshRoom = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

/**
 * Every participant loaded only from our origin and had no script error.
 * @param {import('./browsers.mjs').Participant[]} people @param {string} origin
 */
export function assertCleanPages(people, origin) {
  for (const p of people) {
    const foreign = p.requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(foreign, [], `nothing loaded from another origin (${p.kind})`);
    assert.deepEqual(p.errors, [], `no script errors (${p.kind})`);
    assert.deepEqual(p.dialogs, [], `no dialogs (${p.kind})`);
  }
}

/** This machine's interface addresses: none may appear in a log. */
export function localAddresses() {
  return Object.values(os.networkInterfaces()).flat().map((i) => i?.address).filter((a) => a && a !== '::1');
}

/**
 * The server log names none of `secrets` and no address of this machine.
 * @param {string} log @param {string[]} secrets
 */
export function assertLogKeepsSecrets(log, secrets) {
  for (const secret of [...secrets, ...localAddresses()]) {
    assert.ok(!log.includes(/** @type {string} */ (secret)), `server log contains ${secret}`);
  }
}
