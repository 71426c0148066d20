// Three people meet in real Chromium through the actual UI: everyone
// decodes everyone's video and receives their audio; a leaver's tile goes
// away for the others; nothing is loaded from another origin; the server
// log names no one.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { artifacts, myId, openPage, serverAndBrowser, statsOf, until } from './harness.mjs';

const ctx = serverAndBrowser();

test('three participants see and hear each other; a leaver disappears', async () => {
  const { server, browser } = ctx;
  const room = `standup-${Math.random().toString(36).slice(2, 10)}`;
  const names = ['Alice Example', 'Bob Example', 'Carol Example'];
  const people = [];
  for (const name of names) {
    people.push(await openPage(browser, `${server.origin}/${room}#name=${encodeURIComponent(name)}&autojoin=1`));
  }
  const ids = [];
  for (const p of people) ids.push(await until(() => myId(p.page), 'joined'));
  assert.equal(new Set(ids).size, 3);

  // Everyone decodes video and receives audio from both others, and both
  // keep growing over a window (not a single lucky sample).
  const othersOf = (/** @type {number} */ i) => ids.filter((_, j) => j !== i);
  const first = await Promise.all(people.map((p, i) => until(async () => {
    const s = await statsOf(p.page);
    return othersOf(i).every((o) => s[o]?.framesDecoded > 0 && s[o]?.audioPacketsReceived > 0) && s;
  }, `media at participant ${i}`, 60000)));
  await Promise.all(people.map((p, i) => until(async () => {
    const s = await statsOf(p.page);
    return othersOf(i).every((o) =>
      s[o].framesDecoded >= first[i][o].framesDecoded + 30
      && s[o].audioPacketsReceived >= first[i][o].audioPacketsReceived + 50);
  }, `media growing at participant ${i}`, 60000)));

  // The UI shows two remote tiles with the right names, video playing.
  for (const [i, p] of people.entries()) {
    const labels = await p.page.locator('.tile:not(.self) .name').allTextContents();
    assert.deepEqual(labels.sort(), names.filter((_, j) => j !== i).sort());
    const playing = await p.page.evaluate(() => [...document.querySelectorAll('.tile:not(.self) video')]
      .filter((v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0).length);
    assert.equal(playing, 2);
  }
  await people[0].page.screenshot({ path: path.join(artifacts, 'three-person-grid.png') });

  // Carol leaves through the UI; Alice and Bob see her tile go.
  await people[2].page.click('#leave');
  await people[2].page.locator('#ended').waitFor({ state: 'visible' });
  for (const p of people.slice(0, 2)) {
    await p.page.locator(`.tile[data-participant="${ids[2]}"]`).waitFor({ state: 'detached' });
    assert.equal(await p.page.locator('.tile:not(.self)').count(), 1);
  }
  // Alice and Bob still receive each other after the renegotiation.
  const [a, b] = [await statsOf(people[0].page), await statsOf(people[1].page)];
  await until(async () => {
    const [a2, b2] = [await statsOf(people[0].page), await statsOf(people[1].page)];
    return a2[ids[1]]?.framesDecoded > a[ids[1]].framesDecoded + 20 && b2[ids[0]]?.framesDecoded > b[ids[0]].framesDecoded + 20;
  }, 'media after the leave');

  for (const p of people) {
    const foreign = p.requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(foreign, [], 'nothing loaded from another origin');
    assert.deepEqual(p.errors, [], 'no script errors');
  }
  for (const p of people) await p.context.close();

  // Logs at debug level name no person, no room and no address.
  const log = server.log();
  for (const secret of [...names, ...names.map((n) => n.split(' ')[0]), room, '127.0.0.1']) {
    assert.ok(!log.includes(secret), `server log contains ${secret}`);
  }
});
