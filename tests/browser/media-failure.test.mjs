// A participant whose browser cannot reach the media port is told what is
// wrong, and its retries back off instead of joining and leaving the room
// twice a second. Here Firefox is set to use relays only and has none (a
// policy some networks impose), so it gathers no candidate and ICE fails at
// once — as it does on a machine without a default route.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch } from './browsers.mjs';
import { freshRoom, startServer, until } from './harness.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('./browsers.mjs').Driver} */
let firefox;
before(async () => {
  server = await startServer();
  firefox = await launch('firefox', { prefs: { 'media.peerconnection.ice.relay_only': true } });
});
after(async () => {
  await firefox?.close();
  await server?.stop();
});

/** Times (ms) of the server's (debug) log lines for `event`. @param {string} log @param {'joined'|'left'} event */
const times = (log, event) => [...log.matchAll(new RegExp(`^(\\S+Z)\\s+DEBUG ${event} `, 'gm'))].map((m) => Date.parse(m[1]));

/** In the page: every change of the banner, in order. */
function recordBanner() {
  const w = /** @type {any} */ (window);
  w.bannerLog = [];
  new MutationObserver(() => {
    const b = document.getElementById('banner');
    const shown = b && !b.hidden ? b.textContent ?? '' : '';
    if (b && w.bannerLog.at(-1) !== shown) w.bannerLog.push(shown);
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
}

test('media that cannot connect is explained, and retries back off', async () => {
  const p = await firefox.open(`${server.origin}/${freshRoom('offline')}#name=Flo&autojoin=1`, { init: recordBanner });
  await until(async () => (await p.text('#banner'))?.includes('cannot reach the server'), 'media failure explained');
  // Each retry is a fresh join after the last one left; the pauses between
  // must grow (0.5 s, 1 s, 2 s): the third is at least 2 s by construction,
  // where a retry loop without back-off waits 0.5 s every time.
  const [joins, lefts] = await until(async () => {
    const log = server.log();
    const j = times(log, 'joined');
    return j.length >= 4 && [j, times(log, 'left')];
  }, 'four attempts', 60000);
  const pauses = joins.slice(1).map((t, i) => t - lefts[i]);
  assert.ok(pauses[2] >= 1500 && pauses[2] > pauses[0], `pauses between attempts grow: ${pauses.join(', ')} ms`);
  // Once shown, the explanation stayed up through every later attempt
  // (each one 'joined' for a moment without media), never cleared.
  const log = /** @type {string[]} */ (await p.evaluate(() => /** @type {any} */ (window).bannerLog));
  const since = log.slice(log.findIndex((t) => t.includes('cannot reach the server')));
  assert.deepEqual(since.filter((t) => !t.includes('cannot reach the server')), [], `banner history: ${JSON.stringify(log)}`);
  await p.close();
});
