// Simulcast and per-receiver layers in real browsers. Every camera is a
// 1280×720 canvas (the same in Chromium and Firefox), sent in three layers
// (320, 640 and 1280 wide). What a receiver gets is read from its own
// `inbound-rtp` statistics: the width of the frames it decodes.
//
// - Chromium and Firefox publish all three layers; with room to spare
//   each decodes the other's top layer.
//
// "Top layer" is the width the sender's own statistics give for its `f`
// layer: 1280, unless the sender's encoder scaled it down because these
// two cores are busy (Chromium does that under CPU load).
// - A receiver that shows someone in a small tile gets a small layer of
//   that person; the sender still gets the receiver's top layer; back to
//   a large tile, the top layer returns.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, serverAndBrowsers, until } from './harness.mjs';
import { isTopOf, meeting as meet, receives, receiving, sendingLayers, tileWidth } from './layers.mjs';

const ctx = serverAndBrowsers();

/** @param {string} prefix @param {[import('./browsers.mjs').Driver, string][]} who */
const meeting = (prefix, who) => meet(ctx.server.origin, prefix, who);

test('Chromium and Firefox send three layers and receive each other\'s top layer', async () => {
  const { server, chromium, firefox } = ctx;
  const { people, ids } = await meeting('simulcast', [[chromium, 'Ada'], [firefox, 'Fox']]);
  for (const p of people) {
    await until(async () => {
      const l = await sendingLayers(p);
      return Object.keys(l).sort().join() === 'f,h,q' && l.q > 0 && l.q <= 320 && l.h > l.q && l.f > l.h;
    }, `${p.kind} sends q, h and f layers`, 45000);
  }
  const [ada, fox] = people;
  // Each shows the other in a tile as wide as the top layer.
  await tileWidth(ada, ids[1], 1280);
  await tileWidth(fox, ids[0], 1280);
  await receives(ada, [ids[1]], isTopOf(fox), 'Fox\'s top layer');
  await receives(fox, [ids[0]], isTopOf(ada), 'Ada\'s top layer');
  assertCleanPages(people, server.origin);
});

test('a small tile gets a small layer, a large one the top layer', async () => {
  const { server, chromium, firefox } = ctx;
  // Ada in Chromium resizes her tile of Bo, who sends from Firefox.
  const { people, ids } = await meeting('tiles', [[chromium, 'Ada'], [firefox, 'Bo']]);
  const [ada, bo] = people;
  // A tile as wide as the top layer: the top layer.
  await tileWidth(ada, ids[1], 1280);
  await receives(ada, [ids[1]], isTopOf(bo), 'Bo\'s top layer in a large tile');
  // 160 CSS pixels wide: the smallest layer. Bo, whose tile of Ada is
  // unchanged, still gets more than that.
  await tileWidth(ada, ids[1], 160);
  await receives(ada, [ids[1]], (w) => w > 0 && w <= 320, 'a small layer for the small tile');
  await receives(bo, [ids[0]], (w) => w > 320, 'more than Ada\'s smallest layer');
  // Large again: the top layer again.
  await tileWidth(ada, ids[1], 1280);
  await receives(ada, [ids[1]], isTopOf(bo), 'Bo\'s top layer again');
  assertCleanPages(people, server.origin);
});

// Browsers send VP8 when they can (the server's answer puts it first, and
// end-to-end encryption needs it); a sender that offers only H.264 gets
// the same layer choice. Its layers' widths come from the H.264 sequence
// parameter sets: a 960×540 camera's are 240, 480 and 960, and a tile 600
// pixels wide needs the 960 layer (the middle one would be blurred up).
test('an H.264-only sender\'s layers follow the tile, by the widths it really sends', async () => {
  const { server, chromium } = ctx;
  const { people, ids } = await meeting('h264', [[chromium, 'Ada'], [chromium, 'Hana', { h264: true, camera: [960, 540] }]]);
  const [ada, hana] = people;
  await until(async () => {
    const l = await sendingLayers(hana);
    return Object.keys(l).sort().join() === 'f,h,q' && l.q > 0 && l.q <= 240 && l.f > l.h && l.h > l.q;
  }, 'Hana sends q, h and f layers', 45000);
  await tileWidth(ada, ids[1], 960);
  await receives(ada, [ids[1]], isTopOf(hana), 'Hana\'s top layer in a large tile');
  await tileWidth(ada, ids[1], 160);
  await receives(ada, [ids[1]], (w) => w > 0 && w <= 240, 'the smallest layer for a small tile');
  await tileWidth(ada, ids[1], 600);
  await receives(ada, [ids[1]], isTopOf(hana), 'the top layer for a tile wider than the middle one');
  const { codecs } = await receiving(ada);
  assert.equal(codecs[ids[1]].toLowerCase(), 'video/h264', 'Hana\'s video arrives as H.264');
  assertCleanPages(people, server.origin);
});
