// Accessibility, checked by axe-core in Chromium and Firefox, in English
// and German, on what a user sees: the landing page, the prejoin screen
// with the camera's preview, and the meeting with two people in it — also
// with the "more" menu, the side panel (participants, moderator settings,
// chat) and the shortcut list open. No violation of impact serious or
// critical may remain (contrast included); the moderate and minor ones
// are printed. The page's `lang` says the language shown, and notices are
// live regions a screen reader announces.
//
// axe's source is run by the driver (as script evaluation, like every
// other `evaluate` here), which the page's Content-Security-Policy does
// not govern: the server's policy stays as strict as users get it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers, until } from './harness.mjs';

const ctx = serverAndBrowsers();
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** @typedef {{id: string, impact: string|null, help: string, nodes: {target: string, summary: string}[]}} Finding */

/**
 * Runs axe on the page as it is now; returns its violations.
 * @param {import('./browsers.mjs').Participant} p
 * @returns {Promise<Finding[]>}
 */
async function axe(p) {
  const loaded = await p.evaluate(() => typeof (/** @type {any} */ (window).axe) === 'object');
  // A string is evaluated as a script by both drivers (the function form
  // would need `eval` in the page, which the CSP forbids).
  if (!loaded) await p.page.evaluate(`${AXE_SOURCE}\n;void 0`);
  return p.evaluate(async () => {
    const result = await /** @type {any} */ (window).axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((/** @type {any} */ v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((/** @type {any} */ n) => ({ target: n.target.join(' '), summary: n.failureSummary ?? '' })),
    }));
  });
}

/**
 * No serious or critical violation on this screen; the others are printed.
 * @param {import('./browsers.mjs').Participant} p @param {string} screen
 */
async function assertAccessible(p, screen) {
  const found = await axe(p);
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const describe = (/** @type {Finding[]} */ vs) => vs.map((v) => `  ${v.id} (${v.impact}): ${v.help}\n${
    v.nodes.map((n) => `    ${n.target}\n      ${n.summary.replace(/\n/g, '\n      ')}`).join('\n')}`).join('\n');
  for (const v of found.filter((f) => !bad.includes(f))) {
    console.log(`${p.kind} ${screen}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target).join(', ')}`);
  }
  assert.equal(bad.length, 0, `${p.kind}, ${screen}: serious or critical accessibility violations:\n${describe(bad)}`);
}

/** @param {import('./browsers.mjs').Participant} p @param {string} lang */
async function assertLang(p, lang) {
  assert.equal(await p.evaluate(() => document.documentElement.lang), lang, `<html lang> (${p.kind})`);
}

/** Notices are live regions: a screen reader says them without moving the focus. */
const liveRegions = /** @type {const} */ ({
  '#toasts': 'polite',
  '#announcer': 'polite',
  '#messages': 'polite',
  '#room-error': 'assertive',
  '#device-error': 'assertive',
  '#password-msg': 'assertive',
});

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  const other = kind === 'chromium' ? 'firefox' : 'chromium';
  for (const lang of /** @type {const} */ (['en', 'de'])) {
    test(`${kind}, ${lang}: landing, prejoin and meeting have no serious or critical accessibility violations`, async () => {
      const { server } = ctx;
      // (In a try: Firefox runs it in its first, blank document too, which has no storage.)
      const init = `try { localStorage.setItem('aconfi.lang', '${lang}'); } catch {}`;

      const landing = await ctx[kind].open(`${server.origin}/`, { init });
      await landing.waitFor('#landing');
      await assertLang(landing, lang);
      await assertAccessible(landing, `landing (${lang})`);
      // A bad room name: the error shows, and is announced.
      await landing.fill('#room-input', 'x');
      await landing.press('Enter');
      await landing.waitFor('#room-error');
      await assertAccessible(landing, `landing with an error (${lang})`);
      await landing.close();

      const room = freshRoom('a11y');
      const ada = await ctx[kind].open(`${server.origin}/${room}`, { init });
      // Prejoin: the camera's picture in the preview, Join ready.
      await until(() => ada.evaluate(() => {
        const v = /** @type {HTMLVideoElement} */ (document.getElementById('preview'));
        const join = /** @type {HTMLButtonElement} */ (document.getElementById('join-now'));
        return v.videoWidth > 0 && v.readyState >= 2 && !join.disabled;
      }), `the preview shows (${kind})`);
      await assertLang(ada, lang);
      await assertAccessible(ada, `prejoin (${lang})`);

      await ada.fill('#name-input', 'Ada');
      await ada.click('#join-now');
      const ben = await ctx[other].open(`${server.origin}/${room}#autojoin=1&name=Ben`, { init });
      const ids = [await ada.joined(), await ben.joined()];
      await everyoneSeesEveryone([ada, ben], ids);
      await ada.waitFor('#banner', 'hidden');
      await assertLang(ada, lang);
      await assertAccessible(ada, `meeting (${lang})`);

      const regions = await ada.evaluate((want) => Object.entries(want).map(([sel, live]) => {
        const el = document.querySelector(sel);
        const role = el?.getAttribute('role');
        const got = el?.getAttribute('aria-live') ?? (role === 'alert' ? 'assertive' : role === 'status' || role === 'log' ? 'polite' : null);
        return got === live ? '' : `${sel}: ${got} (role ${role}), not ${live}`;
      }).filter(Boolean), liveRegions);
      assert.deepEqual(regions, [], `live regions (${kind})`);

      await ada.click('#more-btn');
      await ada.waitFor('#more-menu');
      await assertAccessible(ada, `meeting, "more" open (${lang})`);
      await ada.press('Escape');
      await ada.waitFor('#more-menu', 'hidden');

      // The side panel, with the moderator's settings unfolded (Ada came
      // first) and a chat line in it.
      await ada.click('#side-btn');
      await ada.waitFor('#side');
      await ada.click('#settings > summary');
      await ada.waitFor('#new-password');
      await ben.press('c');
      await ben.waitFor('#chat-input');
      await ben.type('Hallo, hello');
      await ben.press('Enter');
      await until(async () => (await ada.texts('#messages li')).some((t) => t.includes('Hallo, hello')), `the chat line (${kind})`);
      await assertAccessible(ada, `meeting, side panel open (${lang})`);

      await ada.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.blur());
      await ada.press('?');
      await ada.waitFor('#shortcuts-dialog');
      await assertAccessible(ada, `meeting, shortcut list open (${lang})`);
      await ada.press('Escape');

      assertCleanPages([ada, ben], server.origin);
      await ada.close();
      await ben.close();
    });
  }
}
