// Shared set-up for the browser tests: start the real aconfi binary on free
// ports, launch Debian's Chromium with fake camera and microphone, and
// small helpers to poll page state with a deadline.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const artifacts = path.join(repoRoot, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });

const binary = process.env.ACONFI_BIN ?? path.join(repoRoot, 'target/debug/aconfi');

/**
 * Starts aconfi on loopback (free ports unless `extraArgs` names them);
 * resolves once it serves.
 * @param {string[]} [extraArgs]
 */
export async function startServer(extraArgs = []) {
  const defaults = { '--listen': '127.0.0.1:0', '--media-bind': '127.0.0.1', '--media-port': '0' };
  const args = [...extraArgs];
  for (const [flag, value] of Object.entries(defaults)) {
    if (!args.includes(flag)) args.push(flag, value);
  }
  const proc = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ACONFI_LOG: process.env.ACONFI_LOG ?? 'debug,str0m=debug,is=debug' },
  });
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
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--disable-gpu',
    ],
  });
}

/**
 * Opens a page in its own context (own camera, own storage) and records
 * every request it makes, so tests can check nothing leaves our origin.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 */
export async function openPage(browser, url) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  /** @type {string[]} */
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return { page, context, requests, errors };
}

/**
 * Polls `fn` until it returns a truthy value or the deadline passes.
 * `page.waitForFunction` with an async predicate passes at once, hence this.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {string} what
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
export async function until(fn, what, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/** @param {import('playwright-core').Page} page */
export const statsOf = (page) => page.evaluate(() => /** @type {any} */ (window).aconfi?.statsByParticipant() ?? {});
/** @param {import('playwright-core').Page} page */
export const myId = (page) => page.evaluate(() => /** @type {any} */ (window).aconfi?.you ?? null);

/**
 * Starts one server and one browser for the tests of a file (before) and
 * stops them after; read them from the returned object inside tests.
 */
export function serverAndBrowser() {
  /** @type {{server: Awaited<ReturnType<typeof startServer>>, browser: import('playwright-core').Browser}} */
  const ctx = /** @type {any} */ ({});
  before(async () => {
    ctx.server = await startServer();
    ctx.browser = await launchBrowser();
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.server?.stop();
  });
  return ctx;
}
