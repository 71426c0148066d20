// The tile layout (web/js/layout.js) for 1–25 people on a phone held
// upright, a laptop and a large screen: the tiles always fit the space,
// never get smaller than MIN_TILE (more go on pages instead), keep a
// sensible shape, and get smaller as people come, never larger.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MIN_THUMB, MIN_TILE, arrange, perPage } from '../../web/js/layout.js';

const GAP = 8;
// The grid's space: the window less the one-row toolbar (about 56 px) and
// the grid's padding.
const SCREENS = {
  phone: { W: 390 - 16, H: 844 - 56 - 16, screen: 390 * 844 },
  laptop: { W: 1280 - 16, H: 800 - 56 - 16, screen: 1280 * 800 },
  large: { W: 1920 - 16, H: 1080 - 56 - 16, screen: 1920 * 1080 },
};

/** The page layout of `n` people: per page, pages, and the first page's tiles. */
function layout(/** @type {number} */ n, /** @type {{W: number, H: number}} */ { W, H }) {
  const k = perPage(n, W, H, GAP);
  return { k, pages: Math.ceil(n / k), ...arrange(k, W, H, GAP) };
}

test('for 1 to 25 people the tiles fit the space, are never below the minimum, and keep a sensible shape', () => {
  for (const [name, s] of Object.entries(SCREENS)) {
    let lastArea = Infinity;
    for (let n = 1; n <= 25; n++) {
      const { k, cols, w, h } = layout(n, s);
      const rows = Math.ceil(k / cols);
      const at = `${n} on the ${name}`;
      assert.ok(cols * w + (cols - 1) * GAP <= s.W + 1e-6, `${at}: fits across`);
      assert.ok(rows * h + (rows - 1) * GAP <= s.H + 1e-6, `${at}: fits down`);
      assert.ok(w >= MIN_TILE.w && h >= MIN_TILE.h, `${at}: ${w.toFixed(0)}×${h.toFixed(0)} is not below the minimum`);
      assert.ok(w / h <= 16 / 9 + 1e-9 && w / h >= 9 / 16 - 1e-9, `${at}: shape ${(w / h).toFixed(2)}`);
      assert.ok(w * h <= lastArea + 1e-6, `${at}: tiles do not grow as people come`);
      lastArea = w * h;
    }
  }
});

test('two people sit side by side on a laptop and fill most of a phone', () => {
  const laptop = layout(2, SCREENS.laptop);
  assert.equal(laptop.cols, 2, 'side by side');
  assert.ok(laptop.w * laptop.h * 2 > SCREENS.laptop.screen / 2, 'half the laptop screen at least');
  const phone = layout(2, SCREENS.phone);
  assert.equal(phone.cols, 1, 'one above the other on an upright phone');
  assert.ok(phone.w * phone.h * 2 >= 0.6 * SCREENS.phone.screen, 'at least 60 % of the phone screen');
  const alone = layout(1, SCREENS.laptop);
  assert.ok(alone.w >= 0.7 * SCREENS.laptop.W || alone.h >= 0.95 * SCREENS.laptop.H, 'one person nearly fills the laptop');
});

test('25 people fit one page on a laptop or a large screen; a phone pages them', () => {
  assert.equal(layout(25, SCREENS.large).pages, 1);
  assert.equal(layout(25, SCREENS.laptop).pages, 1);
  const phone = layout(25, SCREENS.phone);
  assert.ok(phone.pages >= 2, `pages on a phone: ${phone.pages}`);
  assert.ok(phone.k >= 6, `a phone page holds several: ${phone.k}`);
  // The last page's tiles are laid out on their own, as large as they fit.
  const rest = 25 - (phone.pages - 1) * phone.k;
  assert.ok(arrange(rest, SCREENS.phone.W, SCREENS.phone.H, GAP).w >= phone.w);
});

test('beside a stage, thumbnails: the strip below the stage on a phone holds the others of a small meeting on one page', () => {
  // An upright phone's strip: the width of the screen, 30 % of its height.
  const strip = { W: 374, H: Math.round(0.3 * 772) - 16 };
  for (let n = 1; n <= 4; n++) assert.equal(perPage(n, strip.W, strip.H, GAP, MIN_THUMB), n, `${n} thumbnails on one page`);
  // A phone on its side keeps the strip beside the stage (26 % of the
  // width): four thumbnails still on one page there, where the grid's
  // minimum would page them.
  assert.equal(perPage(4, 0.26 * 844 - 16, 390 - 56 - 16, GAP, MIN_THUMB), 4);
  assert.ok(perPage(4, 0.26 * 844 - 16, 390 - 56 - 16, GAP, MIN_TILE) < 4);
  // A laptop's strip beside the stage (26 % of the width).
  assert.ok(perPage(6, 0.26 * 1280 - 16, 728, GAP, MIN_THUMB) >= 6);
});
