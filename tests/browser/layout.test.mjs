// The meeting's layout as a user sees it, in Chromium and Firefox:
// - on a phone (390×844) the toolbar is one row of icon buttons, each
//   with a label and a tooltip, the rest under "more", and two people's
//   tiles cover most of the screen;
// - on a laptop (1280×800) two people sit side by side;
// - one's own picture can float small in a corner and be dragged;
// - more people than fit at a useful size go on pages.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers, until } from './harness.mjs';

const ctx = serverAndBrowsers();
const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 800 };

/**
 * The boxes of the visible tiles and toolbar controls, in CSS pixels.
 * @param {import('./browsers.mjs').Participant} p
 */
const boxes = (p) => p.evaluate(() => {
  const box = (/** @type {Element} */ e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  const visible = (/** @type {string} */ sel) => [...document.querySelectorAll(sel)].filter((e) => e.checkVisibility());
  return {
    tiles: visible('.tile').map((t) => ({ ...box(t), self: t.classList.contains('self'), floating: t.classList.contains('floating') })),
    controls: visible('.toolbar > *').map(box),
    toolbar: box(/** @type {Element} */ (document.querySelector('.toolbar'))),
    viewport: { w: innerWidth, h: innerHeight },
  };
});

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  const other = kind === 'chromium' ? 'firefox' : 'chromium';

  test(`${kind}: a phone gets one toolbar row and tiles on most of the screen; a laptop puts two side by side`, async () => {
    const { server } = ctx;
    const link = `${server.origin}/${freshRoom('layout')}#autojoin=1`;
    const phone = await ctx[kind].open(`${link}&name=Pia`, { viewport: PHONE });
    const laptop = await ctx[other].open(`${link}&name=Lars`, { viewport: LAPTOP });
    const ids = [await phone.joined(), await laptop.joined()];
    await everyoneSeesEveryone([phone, laptop], ids);

    const onPhone = await boxes(phone);
    // One row: every control on the same line, the toolbar as high as one.
    const tops = onPhone.controls.map((c) => Math.round(c.y + c.h / 2));
    assert.ok(onPhone.controls.length >= 6, `mic, camera, hand, chat, more, leave at least: ${onPhone.controls.length}`);
    assert.ok(Math.max(...tops) - Math.min(...tops) <= 2, `one row: centres at ${tops}`);
    assert.ok(onPhone.toolbar.h <= 64, `a one-row toolbar: ${onPhone.toolbar.h}px high`);
    for (const c of onPhone.controls) assert.ok(c.x >= 0 && c.x + c.w <= PHONE.width, 'every control on screen');
    // The two tiles, inside the screen, cover at least 60 % of it.
    assert.equal(onPhone.tiles.length, 2);
    const area = onPhone.tiles.reduce((sum, t) => sum + t.w * t.h, 0);
    const share = area / (PHONE.width * PHONE.height);
    console.log(`# ${kind} phone: tiles cover ${(share * 100).toFixed(0)} % of the screen`);
    assert.ok(share >= 0.6, `tiles cover ${(share * 100).toFixed(0)} % of the phone's screen`);
    // Every button says what it does, to screen readers and as a tooltip.
    const unlabelled = await phone.evaluate(() => [...document.querySelectorAll('.toolbar button')]
      .filter((b) => b.checkVisibility() && (!(b.textContent ?? '').trim() || !b.getAttribute('title')))
      .map((b) => b.id));
    assert.deepEqual(unlabelled, [], 'toolbar buttons without a label or tooltip');
    assert.match(await phone.attr('#mic', 'title') ?? '', /^Microphone on \(M\)$/);

    // The laptop: side by side, each tile larger than a quarter of the screen.
    const onLaptop = await boxes(laptop);
    assert.equal(onLaptop.tiles.length, 2);
    const [a, b] = onLaptop.tiles;
    assert.ok(Math.abs(a.y - b.y) < 2 && Math.abs(a.x - b.x) >= a.w, `side by side: ${JSON.stringify(onLaptop.tiles)}`);
    assert.ok(a.w * a.h > LAPTOP.width * LAPTOP.height / 4, `large tiles: ${a.w}×${a.h}`);

    // "More" holds the rest; Escape closes it and gives the focus back.
    await phone.click('#more-btn');
    assert.equal(await phone.attr('#more-btn', 'aria-expanded'), 'true');
    assert.ok(await phone.isVisible('#copy'));
    for (const c of (await boxes(phone)).controls) assert.ok(c.x >= 0 && c.x + c.w <= PHONE.width);
    await phone.press('Escape');
    await phone.waitFor('#more-menu', 'hidden');
    assert.equal(await phone.focused(), 'more-btn');
    assertCleanPages([phone, laptop], server.origin);
    await phone.close();
    await laptop.close();
  });

  test(`${kind}: one's own picture floats small and can be dragged; too many people for the screen go on pages`, async () => {
    const { server } = ctx;
    const link = `${server.origin}/${freshRoom('pages')}#autojoin=1&mic=off`;
    // A small window, 320×300: room for two useful tiles at a time.
    const small = await ctx[kind].open(`${link}&name=Sam`, { viewport: { width: 320, height: 300 } });
    await small.joined();
    const others = [];
    for (const name of ['Olga', 'Otto']) {
      const p = await ctx[other].open(`${link}&name=${name}&camera=off`);
      await p.joined();
      others.push(p);
    }
    await until(async () => (await small.count('.tile')) === 3, 'three tiles');
    // Three do not fit: two pages.
    await small.waitFor('#pager');
    assert.equal(await small.text('#page-info'), 'Page 1 of 2');
    const firstPage = (await boxes(small)).tiles.length;
    assert.ok(firstPage >= 1 && firstPage < 3, `some tiles on page 1: ${firstPage}`);
    await small.click('#page-next');
    await until(async () => (await small.text('#page-info')) === 'Page 2 of 2', 'page 2');
    assert.equal((await boxes(small)).tiles.length, 3 - firstPage, 'the rest on page 2');
    assert.equal(await small.evaluate(() => /** @type {HTMLButtonElement} */ (document.getElementById('page-next')).disabled), true);
    await small.click('#page-prev');
    await until(async () => (await small.text('#page-info')) === 'Page 1 of 2', 'back to page 1');

    // Self view out of the grid: small, in a corner, the others share
    // the grid (one page now), and a drag moves it.
    await small.click('#selfview-btn');
    await small.waitFor('.tile.self.floating');
    assert.equal(await small.attr('#selfview-btn', 'aria-pressed'), 'true');
    const before = (await boxes(small)).tiles.find((t) => t.self);
    assert.ok(before && before.w < 320 / 2, `small: ${JSON.stringify(before)}`);
    await small.waitFor('#pager', 'hidden');
    const mouse = small.page.mouse;
    await mouse.move(before.x + before.w / 2, before.y + before.h / 2);
    await mouse.down();
    await mouse.move(before.x + before.w / 2 - 120, before.y + before.h / 2 - 120, { steps: 5 });
    await mouse.up();
    const after = (await boxes(small)).tiles.find((t) => t.self);
    assert.ok(after && after.x < before.x - 100 && after.y < before.y - 100, `dragged: ${JSON.stringify({ before, after })}`);
    // The choice is remembered, and undone the same way.
    assert.equal(await small.evaluate(() => localStorage.getItem('aconfi.selfView')), 'float');
    await small.click('#selfview-btn');
    await small.waitFor('#grid > .tile.self');
    assertCleanPages([small, ...others], server.origin);
    for (const p of [small, ...others]) await p.close();
  });
}
