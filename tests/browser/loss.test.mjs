// Random packet loss on one participant's link, both ways (nftables, see
// shaping.mjs), first 5 % and then 20 %: its video keeps decoding in both
// directions (NACK and retransmission, keyframe requests) — at 20 % at
// least the most important picture it receives —, audio keeps flowing,
// and the two others keep decoding each other's top layer. Cy's page shows
// the loss on the tiles, and their recovery.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers, until } from './harness.mjs';
import { canvasCamera, isTopOf, receives, shownPaused, tileWidth } from './layers.mjs';
import { lossyLink, mediaPort } from './shaping.mjs';

const ctx = serverAndBrowsers();

/**
 * Video NACKs a page sent (for what it receives) and was sent (for what it
 * sends).
 * @param {import('./browsers.mjs').Participant} p
 * @returns {Promise<{sent: number, got: number}>}
 */
function nacks(p) {
  return p.evaluate(async () => {
    const stats = await /** @type {any} */ (window).aconfi.pc.getStats();
    let sent = 0;
    let got = 0;
    stats.forEach((/** @type {any} */ s) => {
      if (s.kind !== 'video') return;
      if (s.type === 'inbound-rtp') sent += s.nackCount ?? 0;
      if (s.type === 'outbound-rtp') got += s.nackCount ?? 0;
    });
    return { sent, got };
  });
}

/**
 * `p` receives 150 more audio packets (3 s' worth) from each of `ids` and
 * decodes 60 more frames of their cameras: of every one with `all`, else
 * of at least one, any other's tile saying its video is paused.
 * @param {import('./browsers.mjs').Participant} p @param {number[]} ids @param {boolean} all @param {string} what
 */
async function keepsGoing(p, ids, all, what) {
  const before = await p.stats();
  await until(async () => {
    const s = await p.stats();
    const grew = (/** @type {number} */ id, /** @type {'framesDecoded'|'audioPacketsReceived'} */ k, /** @type {number} */ n) =>
      (s[id]?.[k] ?? 0) >= (before[id]?.[k] ?? 0) + n;
    if (!ids.every((id) => grew(id, 'audioPacketsReceived', 150))) return false;
    const pictures = ids.filter((id) => grew(id, 'framesDecoded', 60));
    if (all) return pictures.length === ids.length;
    const paused = await shownPaused(p, ids);
    return pictures.length > 0 && ids.every((id) => pictures.includes(id) || paused.includes(id));
  }, `${p}: ${what}`, 60000);
}

/**
 * The connection quality `p` shows on the tiles of `ids` ('self' for its own).
 * @param {import('./browsers.mjs').Participant} p @param {Array<number|'self'>} ids
 */
const qualityOf = (p, ids) => p.evaluate((ids) => ids.map((id) => {
  const q = document.querySelector(`.tile[data-participant="${id}"] .quality`);
  return q && !(/** @type {HTMLElement} */ (q).hidden) ? /** @type {HTMLElement} */ (q).dataset.level : 'none';
}), ids);

test('5 % and 20 % packet loss on one link: its video and audio keep flowing both ways; the others are unaffected', async () => {
  const { server, chromium, firefox } = ctx;
  const link = `${server.origin}/${freshRoom('loss')}#autojoin=1`;
  const who = /** @type {const} */ ([[chromium, 'Ada'], [firefox, 'Fox'], [chromium, 'Cy']]);
  const people = [];
  for (const [driver, name] of who) people.push(await driver.open(`${link}&name=${name}`, { init: canvasCamera }));
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  await everyoneSeesEveryone(people, ids);
  const [ada, fox, cy] = people;
  const [adaId, foxId, cyId] = ids;
  // Ada and Fox show each other large: the top layer, before and during
  // the loss. (During it, the top as the sender encodes it then: on this
  // 2-core machine a busy browser's encoder scales its top layer down, which
  // is no doing of the server's.)
  await tileWidth(ada, foxId, 1280);
  await tileWidth(fox, adaId, 1280);
  await receives(ada, [foxId], isTopOf(fox), 'Fox\'s top layer', 90000);
  await receives(fox, [adaId], isTopOf(ada), 'Ada\'s top layer', 90000);

  const port = await mediaPort(cy);
  const before = await nacks(cy);
  for (const percent of [5, 20]) {
    const loss = lossyLink(port, percent);
    try {
      // At 5 %, both pictures; at 20 % (which the estimator reads as a
      // narrow link) at least the most important one, the other shown as
      // paused. Audio always.
      await keepsGoing(cy, [adaId, foxId], percent < 10, `hearing Ada and Fox, decoding them at ${percent} % loss`);
      // Cy's own camera and microphone, through its lossy uplink.
      await keepsGoing(ada, [cyId], true, `Cy at ${percent} % loss`);
      await keepsGoing(fox, [cyId], true, `Cy at ${percent} % loss`);
      // (As long as before the loss: their own estimates dip when this
      // 2-core machine is busy, and climb back.)
      await receives(ada, [foxId], isTopOf(fox, 1), `Fox's top layer while Cy loses ${percent} %`, 90000);
      await receives(fox, [adaId], isTopOf(ada, 1), `Ada's top layer while Cy loses ${percent} %`, 90000);
      // At 20 %, the tiles say "poor": on Cy's page those it receives
      // through the lossy link and its own (what the server reports
      // losing of Cy's), on the others' pages Cy's.
      if (percent >= 20) {
        await until(async () => (await qualityOf(cy, [adaId, foxId, 'self'])).every((q) => q === 'poor'),
          'Cy\'s page shows a poor connection on Ada\'s, Fox\'s and its own tile', 30000);
        await until(async () => (await qualityOf(ada, [cyId]))[0] === 'poor' && (await qualityOf(fox, [cyId]))[0] === 'poor',
          'Ada and Fox show Cy\'s connection as poor', 30000);
        assert.equal((await qualityOf(ada, [foxId]))[0], 'good', 'Fox, not on the lossy link, stays good at Ada');
      }
      const dropped = loss.dropped();
      console.log(`# ${percent} %: ${dropped} datagrams dropped`);
      assert.ok(dropped > 0, `the loss really bit at ${percent} %`);
    } finally {
      loss.lift();
    }
  }
  // The loss lifted, the tiles say so.
  await until(async () => (await qualityOf(cy, [adaId, foxId, 'self'])).every((q) => q === 'good')
    && (await qualityOf(ada, [cyId]))[0] === 'good', 'good again on Cy\'s page and for Cy at Ada', 30000);
  // What was lost was asked for again, both ways.
  const after = await nacks(cy);
  assert.ok(after.sent > before.sent, `Cy asked for lost packets: ${JSON.stringify({ before, after })}`);
  assert.ok(after.got > before.got, `Cy was asked for lost packets: ${JSON.stringify({ before, after })}`);
  assertCleanPages(people, server.origin);
});
