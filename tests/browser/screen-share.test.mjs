// Screen sharing through the UI, from Firefox to Chromium and from Chromium
// to Firefox: the other decodes it, sees it large on the stage with the
// sharer's name, can switch to the grid, and it goes away when sharing
// stops. (Firefox runs in a window on Xvfb here: headless it has no screen.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, freshRoom, serverAndBrowsers, until } from './harness.mjs';

const ctx = serverAndBrowsers({ firefoxDisplay: true });

/**
 * `sharer` shares a screen; `watcher` decodes and stages it, switches to
 * the grid and back, and sees it go when sharing stops.
 * @param {import('./browsers.mjs').Participant} sharer @param {number} sharerId
 * @param {import('./browsers.mjs').Participant} watcher @param {string} sharerName
 */
async function shareAndWatch(sharer, sharerId, watcher, sharerName) {
  const what = `${sharer} → ${watcher}`;
  assert.ok(!(await watcher.isVisible('#stage')), 'no stage without a share');
  await sharer.click('#share');
  // Sharing starts once the browser hands over the screen (asynchronous).
  await until(async () => (await sharer.attr('#share', 'aria-pressed')) === 'true', `share button pressed (${what})`);
  await watcher.waitFor('#stage .screen-tile');
  assert.equal(await watcher.text('#stage .screen-tile .name'), `${sharerName}'s screen`);
  const s1 = await until(async () => { const s = await watcher.stats(); return s[sharerId]?.screenFramesDecoded > 5 && s; }, `screen decoded (${what})`);
  await until(async () => (await watcher.stats())[sharerId].screenFramesDecoded > s1[sharerId].screenFramesDecoded + 10, `screen keeps decoding (${what})`);
  assert.equal((await watcher.stats())[sharerId].framesDecoded, 0, 'the camera is off; only the screen is video');
  assert.ok(await watcher.evaluate(() => /** @type {HTMLVideoElement} */ (document.querySelector('#stage video')).videoWidth > 0));

  // Grid view puts the share back among the tiles, stage view on the stage.
  await watcher.click('#view-btn');
  assert.ok(!(await watcher.isVisible('#stage')));
  await watcher.waitFor('#grid .screen-tile');
  await watcher.click('#view-btn');
  await watcher.waitFor('#stage .screen-tile');

  // Sharing stops: the share goes away for the watcher.
  await sharer.click('#share');
  await watcher.waitFor('.screen-tile', 'detached');
  assert.ok(!(await watcher.isVisible('#stage')));
  assert.equal(await sharer.attr('#share', 'aria-pressed'), 'false');
}

test('a screen shared from Firefox is seen in Chromium, and the other way round', async () => {
  const { server, chromium, firefox } = ctx;
  const room = freshRoom('demo');
  const fiona = await firefox.open(`${server.origin}/${room}#name=Fiona&autojoin=1&camera=off`);
  const fionaId = await fiona.joined();
  const chris = await chromium.open(`${server.origin}/${room}#name=Chris&autojoin=1&camera=off`);
  const chrisId = await chris.joined();
  await until(async () => (await chris.stats())[fionaId]?.audioPacketsReceived > 10, 'audio flows');

  await shareAndWatch(fiona, fionaId, chris, 'Fiona');
  await shareAndWatch(chris, chrisId, fiona, 'Chris');

  assertCleanPages([fiona, chris], server.origin);
  for (const p of [fiona, chris]) await p.close();
});
