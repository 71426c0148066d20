// The two real browsers the tests drive, behind one small API, so that a
// test can put Chromium and Firefox users in the same meeting:
//
// - Chromium: Debian's /usr/bin/chromium driven by playwright-core;
// - Firefox: Debian's /usr/bin/firefox-esr driven by puppeteer-core over
//   WebDriver BiDi (no geckodriver).
//
// Both use fake camera and microphone and never ask for permission. A page
// is a `Participant`: clicks and typing are the driver's own (real input
// events, so user activation works), every wait polls the DOM with a
// deadline, and every request and script error the page makes is recorded.

import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { deadline, until } from './wait.mjs';

/** @typedef {'chromium'|'firefox'} BrowserKind */
/** @typedef {'visible'|'hidden'|'attached'|'detached'} ElementState */

const VIEWPORT = { width: 1280, height: 720 };

/**
 * A browser that opens participants, each in its own context (own storage,
 * own camera).
 * @typedef {{kind: BrowserKind, open: (url: string, opts?: OpenOptions) => Promise<Participant>, close: () => Promise<void>}} Driver
 * @typedef {{init?: (() => void) | string, viewport?: {width: number, height: number}, click?: boolean}} OpenOptions  `init` (a function or script text) runs in every new document before the page's scripts; `viewport` the page's size in CSS pixels (1280×720 if not given); `click: false` leaves a link with `#autojoin=1` on its prejoin screen (by default Join is clicked, as its user would)
 */

/**
 * One page of one browser, with the calls tests need. Selectors are CSS.
 */
export class Participant {
  /**
   * @param {BrowserKind} kind
   * @param {any} page a playwright or puppeteer page
   * @param {{fill: (sel: string, v: string) => Promise<void>, select: (sel: string, v: string) => Promise<void>, close: () => Promise<void>}} ops
   */
  constructor(kind, page, ops) {
    this.kind = kind;
    this.page = page;
    this.ops = ops;
    /** @type {string[]} every URL the page requested */
    this.requests = [];
    /** @type {string[]} uncaught script errors and console errors */
    this.errors = [];
    /** @type {string[]} alert/confirm/prompt texts (all dismissed) */
    this.dialogs = [];
    page.on('request', (/** @type {any} */ r) => this.requests.push(r.url()));
    page.on('pageerror', (/** @type {any} */ e) => this.errors.push(`${kind}: ${e}`));
    page.on('console', (/** @type {any} */ m) => {
      if (m.type() === 'error') this.errors.push(`${kind} console: ${m.text()} ${m.location()?.url ?? ''}`.trim());
    });
    page.on('dialog', (/** @type {any} */ d) => { this.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  }

  /**
   * @template T, A
   * @param {(arg: A) => T | Promise<T>} fn @param {A} [arg]
   * @returns {Promise<T>}
   */
  evaluate(fn, arg) { return this.page.evaluate(fn, arg); }

  /**
   * Waits until the first element matching `sel` is in `state`.
   * @param {string} sel @param {ElementState} [state] @param {number} [timeoutMs]
   */
  async waitFor(sel, state = 'visible', timeoutMs = 30000) {
    await until(() => this.evaluate(({ sel, state }) => {
      const el = document.querySelector(sel);
      const shown = Boolean(el && el.checkVisibility());
      return { visible: shown, hidden: !shown, attached: Boolean(el), detached: !el }[state];
    }, { sel, state }), `${sel} ${state} (${this.kind})`, timeoutMs);
  }

  /** @param {string} sel */
  isVisible(sel) { return this.evaluate((sel) => Boolean(document.querySelector(sel)?.checkVisibility()), sel); }

  /** @param {string} sel @returns {Promise<string|null>} */
  text(sel) { return this.evaluate((sel) => document.querySelector(sel)?.textContent ?? null, sel); }

  /** @param {string} sel @returns {Promise<string[]>} */
  texts(sel) { return this.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent ?? ''), sel); }

  /** @param {string} sel @param {string} name @returns {Promise<string|null>} */
  attr(sel, name) { return this.evaluate(({ sel, name }) => document.querySelector(sel)?.getAttribute(name) ?? null, { sel, name }); }

  /** @param {string} sel @returns {Promise<number>} */
  count(sel) { return this.evaluate((sel) => document.querySelectorAll(sel).length, sel); }

  /**
   * A control in the toolbar's "more" menu is reached as a user does:
   * the menu is opened first.
   * @param {string} sel
   */
  async reveal(sel) {
    const inClosedMenu = await this.evaluate((sel) => {
      const menu = document.querySelector(sel)?.closest('.menu');
      return Boolean(menu && /** @type {HTMLElement} */ (menu).hidden);
    }, sel);
    if (inClosedMenu) await this.click('#more-btn');
  }

  /** A real click (trusted event) once the element is visible. @param {string} sel */
  async click(sel) {
    await this.reveal(sel);
    // Visible and enabled: a disabled control is not ready for the user yet.
    await until(() => this.evaluate((sel) => {
      const el = /** @type {HTMLButtonElement|null} */ (document.querySelector(sel));
      return Boolean(el && el.checkVisibility() && !el.disabled);
    }, sel), `${sel} visible and enabled (${this.kind})`);
    await deadline(this.page.click(sel), `click ${sel} (${this.kind})`);
  }

  /** Types into an input, replacing what was there. @param {string} sel @param {string} value */
  async fill(sel, value) {
    await this.waitFor(sel, 'visible');
    await deadline(this.ops.fill(sel, value), `fill ${sel} (${this.kind})`);
  }

  /** Presses one key where the focus is (a trusted key event). @param {string} key */
  press(key) { return deadline(this.page.keyboard.press(key), `press ${key} (${this.kind})`); }

  /** Presses `key` with `modifier` held (e.g. Shift, Tab). @param {string} modifier @param {string} key */
  pressWith(modifier, key) {
    const k = this.page.keyboard;
    return deadline((async () => { await k.down(modifier); await k.press(key); await k.up(modifier); })(),
      `press ${modifier}+${key} (${this.kind})`);
  }

  /** Types text key by key where the focus is. @param {string} text */
  type(text) { return deadline(this.page.keyboard.type(text), `type ${text} (${this.kind})`); }

  /** The id of the element with the focus, if it has one. @returns {Promise<string>} */
  focused() { return this.evaluate(() => document.activeElement?.id ?? ''); }

  /** Chooses an option of a select by value. @param {string} sel @param {string} value */
  async select(sel, value) {
    await this.reveal(sel);
    await this.waitFor(sel, 'visible');
    await deadline(this.ops.select(sel, value), `select ${sel} (${this.kind})`);
  }

  /** Ticks or unticks a checkbox by clicking it. @param {string} sel @param {boolean} on */
  async setChecked(sel, on) {
    const checked = await this.evaluate((sel) => /** @type {HTMLInputElement} */ (document.querySelector(sel))?.checked, sel);
    if (checked !== on) await this.click(sel);
  }

  /** @param {string} path */
  screenshot(path) { return this.page.screenshot({ path }); }

  // ---- A-Confi state, read from the page's Meeting (window.aconfi) ----

  /** Our participant id once joined, else null. @returns {Promise<number|null>} */
  id() { return this.evaluate(() => /** @type {any} */ (window).aconfi?.you ?? null); }

  /** The meeting state ('joined', 'password', ...). @returns {Promise<string|undefined>} */
  state() { return this.evaluate(() => /** @type {any} */ (window).aconfi?.state); }

  /** Receive statistics per remote participant. @returns {Promise<Record<number, any>>} */
  stats() { return this.evaluate(() => /** @type {any} */ (window).aconfi?.statsByParticipant() ?? {}); }

  /** Waits until joined; returns our id. */
  joined() { return until(() => this.evaluate(() => { const m = /** @type {any} */ (window).aconfi; return m?.state === 'joined' && m.you; }), `joined (${this.kind})`, 60000); }

  /**
   * A link asking to join at once (`#autojoin=1`) joins on a click of the
   * user's on that page: the prejoin screen comes up filled in, and this
   * clicks Join once, as the user would. A page that shows something else
   * instead (a broken link's explanation) is left as it is.
   */
  async clickJoinIfAsked() {
    const shown = await until(() => this.evaluate(() => {
      const vis = (/** @type {string} */ id) => document.getElementById(id)?.checkVisibility() ?? false;
      return vis('prejoin') ? 'prejoin' : vis('ended') ? 'ended' : vis('meeting') ? 'meeting' : null;
    }), `the prejoin screen or another (${this.kind})`);
    if (shown === 'prejoin') await this.click('#join-now');
  }

  /** Closes the page and its context. */
  close() { return this.ops.close(); }

  toString() { return this.kind; }
}

// The fake cameras run at 15 frames a second in the tests (a laptop camera
// in dim light): on a 2-core machine two browsers encoding, decoding and
// drawing 720p30 starve each other and the tests run long; at 15 they use
// about 40 % less CPU, and every check still sees each camera's picture
// decoded. The benchmarks (measure-*.mjs) set ACONFI_FAKE_FPS=30, a
// camera's usual rate; it is read at each launch.
const fakeFps = () => Number(process.env.ACONFI_FAKE_FPS ?? 15);
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-gpu',
];

/**
 * @param {{args?: string[], home?: string, strictTls?: boolean}} [opts] `args`: more command-line
 *   switches; `home`: the HOME it runs with (its NSS certificate store is
 *   `home/.pki/nssdb`); `strictTls`: certificate errors are errors (else
 *   the servers' generated certificates are accepted)
 * @returns {Promise<Driver>}
 */
export async function launchChromium(opts = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, `--use-fake-device-for-media-stream=fps=${fakeFps()}`, ...(opts.args ?? [])],
    env: opts.home ? { ...process.env, HOME: opts.home } : process.env,
  });
  const strictTls = Boolean(opts.strictTls);
  return {
    kind: 'chromium',
    async open(url, opts = {}) {
      const context = await browser.newContext({ ignoreHTTPSErrors: !strictTls, viewport: opts.viewport ?? VIEWPORT });
      if (opts.init) await context.addInitScript(opts.init);
      const page = await context.newPage();
      const p = new Participant('chromium', page, {
        fill: (sel, v) => page.fill(sel, v),
        select: async (sel, v) => { await page.selectOption(sel, v); },
        close: () => context.close(),
      });
      await page.goto(url);
      if (opts.click !== false && /[#&]autojoin=1(&|$)/.test(new URL(url).hash)) await p.clickJoinIfAsked();
      return p;
    },
    close: () => browser.close(),
  };
}

/**
 * Firefox with fake devices and no permission prompts. Its ICE settings are
 * left as a user has them: no loopback candidates, so the server must offer
 * a candidate on a real interface. Headless Firefox has no screen to
 * capture; `{display: true}` runs it in a window on a private Xvfb display
 * instead, so getDisplayMedia shares that screen. `prefs` adds or
 * overrides Firefox preferences. `profile`: a profile directory of the
 * test's making (e.g. with a certificate store); `strictTls`: certificate
 * errors are errors (else the servers' generated certificates are accepted).
 * @param {{display?: boolean, prefs?: Record<string, unknown>, profile?: string, strictTls?: boolean}} [opts]
 * @returns {Promise<Driver>}
 */
export async function launchFirefox(opts = {}) {
  const xvfb = opts.display ? await startXvfb() : null;
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: !xvfb,
    acceptInsecureCerts: !opts.strictTls,
    ...(opts.profile ? { userDataDir: opts.profile } : {}),
    env: xvfb ? { ...process.env, DISPLAY: xvfb.display } : process.env,
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.navigator.video.default_fps': fakeFps(), // as Chromium's, above
      ...opts.prefs,
    },
  }).catch(async (e) => { await xvfb?.stop(); throw e; });
  return {
    kind: 'firefox',
    async open(url, opts = {}) {
      const context = await browser.createBrowserContext();
      // A window each, as each user has their own: a background tab
      // renders nothing, so its video stops and clicks into it (which wait
      // for an IntersectionObserver) never finish.
      const page = await context.newPage({ type: 'window' });
      await page.setViewport(opts.viewport ?? VIEWPORT);
      if (opts.init) await page.evaluateOnNewDocument(opts.init);
      const p = new Participant('firefox', page, {
        // Real key events into the emptied, focused field, as a user types.
        fill: async (sel, v) => {
          await page.$eval(sel, (/** @type {any} */ el) => { el.value = ''; el.focus(); });
          await page.keyboard.type(v);
        },
        select: async (sel, v) => { await page.select(sel, v); },
        close: () => context.close(),
      });
      await page.goto(url);
      if (opts.click !== false && /[#&]autojoin=1(&|$)/.test(new URL(url).hash)) await p.clickJoinIfAsked();
      return p;
    },
    async close() {
      await browser.close();
      await xvfb?.stop();
    },
  };
}

/** @param {BrowserKind} kind @param {{display?: boolean, prefs?: Record<string, unknown>, args?: string[]}} [opts] */
export const launch = (kind, opts) => (kind === 'firefox' ? launchFirefox(opts) : launchChromium(opts));

/**
 * A private X display (Xvfb picks a free number and tells it on fd 3).
 * @returns {Promise<{display: string, stop: () => Promise<void>}>}
 */
async function startXvfb() {
  const proc = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x720x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr?.on('data', (d) => { err += d; });
  const fd3 = /** @type {import('node:stream').Readable} */ (proc.stdio[3]);
  const display = await new Promise((resolve, reject) => {
    let out = '';
    fd3.on('data', (d) => { out += d; if (out.includes('\n')) resolve(`:${out.trim()}`); });
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`Xvfb exited (${code}): ${err}`)));
  });
  return {
    display,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
