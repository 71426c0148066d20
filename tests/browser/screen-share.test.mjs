// A screen share through the UI: the others decode it, see it large on the
// stage with the sharer's name, can switch to the grid, and it goes away
// when sharing stops.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { myId, openPage, serverAndBrowser, statsOf, until } from './harness.mjs';

const ctx = serverAndBrowser();

test('a shared screen is decoded and staged for the others', async () => {
  const { server, browser } = ctx;
  const room = `demo-${Math.random().toString(36).slice(2, 10)}`;
  const alice = await openPage(browser, `${server.origin}/${room}#name=Alice&autojoin=1&camera=off`);
  const aliceId = await until(() => myId(alice.page), 'alice joined');
  const bob = await openPage(browser, `${server.origin}/${room}#name=Bob&autojoin=1&camera=off`);
  await until(() => myId(bob.page), 'bob joined');
  await until(async () => (await statsOf(bob.page))[aliceId]?.audioPacketsReceived > 10, 'audio flows');
  assert.ok(await bob.page.locator('#stage').isHidden(), 'no stage without a share');

  await alice.page.click('#share');
  // Sharing starts once the browser hands over the screen (asynchronous).
  await until(async () => (await alice.page.getAttribute('#share', 'aria-pressed')) === 'true', 'share button pressed');
  const staged = bob.page.locator('#stage .screen-tile');
  await staged.waitFor({ state: 'visible' });
  assert.equal(await staged.locator('.name').textContent(), "Alice's screen");
  const s1 = await until(async () => { const s = await statsOf(bob.page); return s[aliceId]?.screenFramesDecoded > 5 && s; }, 'screen decoded');
  await until(async () => (await statsOf(bob.page))[aliceId].screenFramesDecoded > s1[aliceId].screenFramesDecoded + 10, 'screen keeps decoding');
  assert.equal((await statsOf(bob.page))[aliceId].framesDecoded, 0, 'the camera is off; only the screen is video');
  assert.ok(await bob.page.evaluate(() => /** @type {HTMLVideoElement} */ (document.querySelector('#stage video')).videoWidth > 0));

  // Grid view puts the share back among the tiles.
  await bob.page.click('#view-btn');
  assert.ok(await bob.page.locator('#stage').isHidden());
  await bob.page.locator('#grid .screen-tile').waitFor({ state: 'visible' });

  // Sharing stops: the share goes away for Bob.
  await alice.page.click('#share');
  await bob.page.locator('.screen-tile').waitFor({ state: 'detached' });
  for (const p of [alice, bob]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});
