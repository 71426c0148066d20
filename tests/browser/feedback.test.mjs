// "You are muted" when talking while muted, in Chromium and Firefox: the
// page measures its own muted microphone (a copy of the track, never
// sent) and says so; unmuted, or silent, it says nothing. Unmuted, her own
// tile lights up while she talks. Kay speaks:
// in Chromium a tone the test turns on, in Firefox the fake microphone's
// steady tone. The other browser watches.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, freshRoom, serverAndBrowsers, until } from './harness.mjs';
import { toneMicrophone } from './tone.mjs';

const ctx = serverAndBrowsers();

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  test(`${kind}: talking while muted shows "You are muted"; unmuted it does not`, async () => {
    const { server } = ctx;
    const other = kind === 'chromium' ? 'firefox' : 'chromium';
    const link = `${server.origin}/${freshRoom('muted-talk')}`;
    const watcher = await ctx[other].open(`${link}#autojoin=1&mic=off&name=Wat`);
    await watcher.joined();
    const kay = await ctx[kind].open(`${link}#autojoin=1&name=Kay`, kind === 'chromium' ? { init: toneMicrophone } : {});
    const id = await kay.joined();
    if (kind === 'chromium') await kay.evaluate(() => /** @type {any} */ (window).__tone(true));
    const tile = `.tile[data-participant="${id}"]`;
    // Unmuted and speaking: the watcher sees Kay as the speaker, and Kay's
    // page shows no hint.
    await until(async () => /speaking/.test(await watcher.attr(tile, 'class') ?? ''), 'the watcher sees Kay speaking');
    assert.equal(await kay.isVisible('#muted-hint'), false, 'no hint while unmuted');
    // Kay's own tile shows her voice, measured in her page; the watcher,
    // muted, shows none on his.
    await kay.waitFor('.tile.self.voice', 'attached');
    assert.equal(await watcher.count('.tile.self.voice'), 0, 'a muted microphone lights nothing');
    // Muted and still speaking: the hint, and the watcher hears nothing.
    await kay.press('m');
    await until(async () => /audio-off/.test(await watcher.attr(tile, 'class') ?? ''), 'the watcher sees Kay muted');
    await kay.waitFor('#muted-hint', 'visible');
    assert.match(await kay.text('#muted-hint') ?? '', /You are muted/);
    // Screen readers hear it from the meeting's live region.
    await until(async () => /You are muted/.test(await kay.text('#announcer') ?? ''), 'the hint announced');
    assert.equal(await kay.count('.tile.self.voice'), 0, 'muted, her tile does not light up');
    // Unmuted again: gone.
    await kay.press('m');
    await kay.waitFor('#muted-hint', 'hidden');
    assertCleanPages([watcher, kay], server.origin);
    await kay.close();
    await watcher.close();
  });
}
