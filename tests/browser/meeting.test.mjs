// Two Chromium users and one Firefox user meet through the actual UI:
// everyone decodes everyone's video and receives their audio; the Firefox
// user leaves (the others see the tile go and keep going) and comes back
// through the prejoin screen, and everyone recovers; nothing is loaded from
// another origin; the server log names no one.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import {
  artifacts, assertCleanPages, assertLogKeepsSecrets, everyoneSeesEveryone, freshRoom, serverAndBrowsers, until,
} from './harness.mjs';

const ctx = serverAndBrowsers();

test('Chromium and Firefox users see and hear each other; a Firefox user leaves and rejoins', async () => {
  const { server, chromium, firefox } = ctx;
  const room = freshRoom('standup');
  const link = `${server.origin}/${room}`;
  const names = ['Alice Example', 'Bob Example', 'Fiona Example'];
  const drivers = [chromium, chromium, firefox];
  const people = [];
  for (const [i, name] of names.entries()) {
    people.push(await drivers[i].open(`${link}#name=${encodeURIComponent(name)}&autojoin=1`));
  }
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  assert.equal(new Set(ids).size, 3);
  await everyoneSeesEveryone(people, ids);

  // The UI shows two remote tiles with the right names, video playing.
  for (const [i, p] of people.entries()) {
    const labels = await p.texts('.tile:not(.self) .name');
    assert.deepEqual(labels.sort(), names.filter((_, j) => j !== i).sort(), `tile names at ${p}`);
    const playing = await p.evaluate(() => [...document.querySelectorAll('.tile:not(.self) video')]
      .filter((v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0).length);
    assert.equal(playing, 2, `videos playing at ${p}`);
  }
  await people[0].screenshot(path.join(artifacts, 'three-person-grid.png'));
  await people[2].screenshot(path.join(artifacts, 'three-person-grid-firefox.png'));

  // Fiona (Firefox) leaves through the UI; Alice and Bob see her tile go
  // and keep receiving each other after the renegotiation.
  const fiona = people[2];
  await fiona.click('#leave');
  await fiona.waitFor('#ended');
  for (const p of people.slice(0, 2)) {
    await p.waitFor(`.tile[data-participant="${ids[2]}"]`, 'detached');
    assert.equal(await p.count('.tile:not(.self)'), 1);
  }
  const [a, b] = [await people[0].stats(), await people[1].stats()];
  await until(async () => {
    const [a2, b2] = [await people[0].stats(), await people[1].stats()];
    return a2[ids[1]]?.framesDecoded > a[ids[1]].framesDecoded + 20 && b2[ids[0]]?.framesDecoded > b[ids[0]].framesDecoded + 20;
  }, 'media after the leave');

  // She comes back: "Rejoin" leads to the prejoin screen, where she types
  // her name again (the link fragment is gone) and joins.
  await fiona.click('#rejoin');
  await fiona.waitFor('#prejoin');
  await until(() => fiona.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).videoWidth > 0), 'firefox camera preview');
  await fiona.fill('#name-input', names[2]);
  await fiona.click('#join-now');
  ids[2] = await fiona.joined();
  await everyoneSeesEveryone(people, ids);
  for (const p of people.slice(0, 2)) {
    assert.equal(await p.text(`.tile[data-participant="${ids[2]}"] .name`), names[2]);
  }

  assertCleanPages(people, server.origin);
  for (const p of people) await p.close();
  assertLogKeepsSecrets(server.log(), [...names, ...names.map((n) => n.split(' ')[0]), room]);
});
