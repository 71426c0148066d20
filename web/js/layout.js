// How the meeting's tiles share the screen: pure arithmetic, no DOM (the
// unit tests in tests/js/layout.test.mjs run it for 1–25 people on a
// phone, a laptop and a large screen).

/** The smallest tile worth showing (CSS pixels): below it, pages. */
export const MIN_TILE = { w: 160, h: 100 };
/** The same beside a stage, where the tiles are a strip of thumbnails. */
export const MIN_THUMB = { w: 96, h: 54 };

/**
 * The best arrangement of `n` tiles in `W`×`H` with `gap` between them:
 * the column count whose tiles are largest. A tile takes the shape of its
 * share of the space — no wider than 16:9, no taller than 4:3 on a
 * landscape screen or 9:16 on an upright phone — and its video fills it,
 * cropped at the edges.
 * @param {number} n @param {number} W @param {number} H @param {number} gap
 * @returns {{cols: number, w: number, h: number}}
 */
export function arrange(n, W, H, gap) {
  const tallest = H > W ? 9 / 16 : 4 / 3;
  let best = { cols: 1, w: 0, h: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (W - gap * (cols - 1)) / cols;
    let h = (H - gap * (rows - 1)) / rows;
    if (w / h > 16 / 9) w = h * 16 / 9;
    else if (w / h < tallest) h = w / tallest;
    if (w * h > best.w * best.h) best = { cols, w, h };
  }
  return best;
}

/**
 * How many of `n` tiles go on one page of `W`×`H`: all of them if they
 * fit at `min` (MIN_TILE unless told) or larger, else as many as do (at
 * least one).
 * @param {number} n @param {number} W @param {number} H @param {number} gap
 * @param {{w: number, h: number}} [min]
 */
export function perPage(n, W, H, gap, min = MIN_TILE) {
  let k = Math.max(1, n);
  for (; k > 1; k--) {
    const a = arrange(k, W, H, gap);
    if (a.w >= min.w && a.h >= min.h) break;
  }
  return k;
}
