// The browser's local storage, which may be refused: a meeting in another
// site's frame (docs/embedding.md) gets none where the browser blocks
// third-party storage (Chromium does when third-party cookies are off),
// and there `localStorage` throws. The page works without it; it only
// forgets the name and language for next time. No DOM here.

/** The value kept under `key`, or null. @param {string} key @returns {string|null} */
export function loadSetting(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

/** Keeps `value` under `key` (null forgets it), if the browser lets us. @param {string} key @param {string|null} value */
export function saveSetting(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch { /* not kept: asked again next time */ }
}
