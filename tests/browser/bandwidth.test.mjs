// Bandwidth estimation in real browsers: one participant's downlink is
// limited (tc on loopback, shaping.mjs) while three people publish their
// 1280×720 canvas cameras in three layers. The server's estimate of that
// link (str0m's TWCC estimator) must give that participant low layers that
// keep decoding, leave everyone else at the top layer, and climb back once
// the limit is lifted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, serverAndBrowsers, until } from './harness.mjs';
import { isTopOf, meeting, receives, receiving, shownPaused, tileWidth } from './layers.mjs';
import { limitDownlink, mediaPort } from './shaping.mjs';

const ctx = serverAndBrowsers();

test('a participant on a 300 kbit/s downlink gets low layers; the others keep the top one', async () => {
  const { server, chromium, firefox } = ctx;
  const { people, ids } = await meeting(server.origin, 'bandwidth', [[chromium, 'Ada'], [firefox, 'Fox'], [chromium, 'Cy']]);
  const others = (/** @type {number} */ i) => ids.map((id, j) => [id, j]).filter(([, j]) => j !== i);
  // Everyone shows everyone else large: with room to spare, the top layer.
  for (const [i, p] of people.entries()) for (const [id] of others(i)) await tileWidth(p, id, 1280);
  const joinedAt = performance.now();
  for (const [i, p] of people.entries()) {
    for (const [id, j] of others(i)) await receives(p, [id], isTopOf(people[j]), `${ids[j]}'s top layer`, 90000);
  }
  console.log(`# everyone's top layer at everyone after ${((performance.now() - joinedAt) / 1000).toFixed(1)} s`);
  const cy = people[2];
  const shaper = limitDownlink(await mediaPort(cy), 300);
  try {
    const limitedAt = performance.now();
    // Cy: small layers (or a paused video), still decoding; never the top.
    await receives(cy, [ids[0]], (w) => w > 0 && w <= 320, 'a low layer of Ada over 300 kbit/s', 60000);
    console.log(`# low layer after ${((performance.now() - limitedAt) / 1000).toFixed(1)} s; ${JSON.stringify(await receiving(cy))}`);
    // Fox: a low layer too (once its keyframe got through), or paused,
    // and then the tile says so.
    await until(async () => {
      const fox = (await receiving(cy)).widths[ids[1]] ?? 0;
      return (fox > 0 && fox <= 320) || (await shownPaused(cy, [ids[1]])).length > 0;
    }, 'Fox at a low layer or paused over 300 kbit/s', 60000);
    assert.ok(shaper.dropped() > 0, 'the limit really bit');
    // The others are not held back by Cy's link.
    for (const [i, p] of people.slice(0, 2).entries()) {
      for (const [id, j] of others(i)) await receives(p, [id], isTopOf(people[j]), `${ids[j]}'s top layer while Cy is limited`);
    }
  } finally {
    shaper.lift();
  }
  const liftedAt = performance.now();
  for (const [id, j] of others(2)) await receives(cy, [id], isTopOf(people[j]), `${ids[j]}'s top layer again`, 90000);
  console.log(`# top layers again after ${((performance.now() - liftedAt) / 1000).toFixed(1)} s`);
  assertCleanPages(people, server.origin);
});

