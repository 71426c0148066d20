// Joining from the landing page, as the README promises, Chromium and
// Firefox in the same meetings: by typing a meeting's name, and by pasting
// its whole link (an end-to-end encrypted one keeps its key); a name that
// is no meeting's gets an explanation on the page.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers, until } from './harness.mjs';

const ctx = serverAndBrowsers();

/** Types `what` into the landing page's join field and submits it. @param {import('./browsers.mjs').Participant} p @param {string} what */
async function joinFromLanding(p, what) {
  await p.fill('#room-input', what);
  await p.press('Enter');
}

test('typed by name in one browser, pasted as a link in the other: one meeting', async () => {
  const { server, chromium, firefox } = ctx;
  const room = freshRoom('weekly');
  const carl = await chromium.open(`${server.origin}/`);
  await joinFromLanding(carl, room);
  await carl.waitFor('#prejoin');
  assert.equal(await carl.evaluate(() => location.pathname), `/${room}`);
  await carl.fill('#name-input', 'Carl');
  await carl.click('#join-now');
  const ids = [await carl.joined()];

  // The link as someone would paste it from a mail: the whole address.
  const fiona = await firefox.open(`${server.origin}/`);
  await joinFromLanding(fiona, `  ${server.origin}/${room}  `);
  await fiona.waitFor('#prejoin');
  assert.equal(await fiona.evaluate(() => location.pathname), `/${room}`);
  await fiona.click('#join-now');
  ids.push(await fiona.joined());
  await everyoneSeesEveryone([carl, fiona], ids);

  // Not a meeting's name: said on the page, which stays.
  const other = await firefox.open(`${server.origin}/`);
  await joinFromLanding(other, 'no!');
  await other.waitFor('#room-error');
  assert.equal(await other.evaluate(() => location.pathname), '/');
  assertCleanPages([carl, fiona, other], server.origin);
  for (const p of [carl, fiona, other]) await p.close();
});

test('a pasted end-to-end encrypted link keeps its key: both are in one encrypted meeting', async () => {
  const { server, chromium, firefox } = ctx;
  // Fiona starts a meeting (encrypted by default) and sends the link.
  const fiona = await firefox.open(`${server.origin}/`);
  await fiona.click('#start');
  await fiona.waitFor('#prejoin');
  const link = await fiona.evaluate(() => location.href);
  assert.match(link, /#key=/);
  await fiona.click('#join-now');
  const ids = [await fiona.joined()];

  const carl = await chromium.open(`${server.origin}/`);
  await joinFromLanding(carl, link);
  await carl.waitFor('#prejoin');
  assert.ok(await carl.isVisible('#prejoin-e2ee'), 'the prejoin screen says it is end-to-end encrypted');
  assert.equal(await carl.evaluate(() => location.href), link, 'the key came along');
  await carl.click('#join-now');
  ids.push(await carl.joined());
  await everyoneSeesEveryone([fiona, carl], ids);
  const codes = await Promise.all([fiona, carl].map((p) => until(async () => {
    const c = await p.text('#safety-code');
    return /^\d{5} /.test(c ?? '') && c;
  }, `a safety code (${p})`)));
  assert.equal(codes[0], codes[1], 'one encrypted meeting, one code');
  assertCleanPages([fiona, carl], server.origin);
  for (const p of [fiona, carl]) await p.close();
});
