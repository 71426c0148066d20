// Active speaker in real browsers: three people, Ada and Cy in Chromium
// with microphones replaced by a tone the test switches on and off, Fox in
// Firefox, muted, whose fake microphone is a steady tone. With Ada's tone
// on and the others silent, every page outlines her tile (her own, on her
// page) and puts it on the stage; when she falls silent and Fox unmutes,
// everyone follows. The server decides from the audio level in the
// packets' headers; Fox's muted microphone never counts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, freshRoom, serverAndBrowsers, until } from './harness.mjs';
import { toneMicrophone } from './tone.mjs';

const ctx = serverAndBrowsers();

test('the person speaking is outlined and on the stage for everyone, in Chromium and Firefox', async () => {
  const { server, chromium, firefox } = ctx;
  const room = freshRoom('speaker');
  const link = `${server.origin}/${room}`;
  const people = [
    await chromium.open(`${link}#name=Ada&autojoin=1`, { init: toneMicrophone }),
    // Firefox's fake microphone is a steady tone (and Firefox keeps an
    // AudioContext suspended until a real click): Fox speaks by unmuting.
    await firefox.open(`${link}#name=Fox&autojoin=1&mic=off`),
    await chromium.open(`${link}#name=Cy&autojoin=1`, { init: toneMicrophone }),
  ];
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  // Everyone decodes everyone's video (Fox, muted, sends no audio yet).
  await Promise.all(people.map((p, i) => until(async () => {
    const s = await p.stats();
    return ids.filter((_, j) => j !== i).every((o) => s[o]?.framesDecoded > 10);
  }, `video at ${p}`, 60000)));
  for (const p of people) {
    assert.equal(await p.count('.tile.speaking'), 0, `nobody speaks yet (${p})`);
  }

  /** Everyone shows `who` (an index) as the one speaking. @param {number} who */
  const everyoneShows = async (who) => {
    for (const [i, p] of people.entries()) {
      if (i === who) {
        await until(async () => await p.count('.tile.self.speaking') === 1, `own tile outlined (${p})`, 20000);
      } else {
        const tile = `.tile[data-participant="${ids[who]}"]`;
        await until(async () => await p.count(`#stage ${tile}.speaking`) === 1, `speaker ${ids[who]} on the stage (${p})`, 20000);
        assert.ok(await p.isVisible(`#stage ${tile}`));
      }
      assert.equal(await p.count('.tile.speaking'), 1, `only one outlined (${p})`);
    }
  };

  await people[0].evaluate(() => /** @type {any} */ (window).__tone(true));
  await everyoneShows(0);

  // Ada falls silent, Fox (Firefox) speaks: everyone follows.
  await people[0].evaluate(() => /** @type {any} */ (window).__tone(false));
  await people[1].click('#mic');
  await everyoneShows(1);
  // Fox joined without a microphone (mic=off): unmuting asked for one, and
  // the others hear it.
  await until(async () => (await people[0].stats())[ids[1]]?.audioPacketsReceived > 50, 'audio from Fox at Ada');

  // Grid view takes the speaker off the stage; the outline stays.
  await people[2].click('#view-btn');
  await until(async () => await people[2].count('#stage .tile') === 0, 'grid view (Cy)');
  assert.equal(await people[2].count(`.tile[data-participant="${ids[1]}"].speaking`), 1);

  assertCleanPages(people, server.origin);
  for (const p of people) await p.close();
});
