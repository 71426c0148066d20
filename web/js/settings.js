// The operator's settings, as the server put them into the page (the
// `aconfi-settings` meta element of index.html, filled in from the flags
// at start): what the page needs before it asks for the camera. No DOM
// writes here.

/** @typedef {{cameraHeight: number}} Settings */

/** @type {Settings} what a page served without settings uses */
const DEFAULTS = { cameraHeight: 720 };

/** @type {Settings|null} */
let read = null;

/**
 * The settings (read once); a missing or malformed element gives the
 * defaults.
 * @returns {Settings}
 */
export function settings() {
  if (read) return read;
  let given = {};
  try {
    given = JSON.parse(document.querySelector('meta[name="aconfi-settings"]')?.getAttribute('content') ?? '{}');
  } catch { /* the defaults */ }
  const h = Number(/** @type {any} */ (given)?.cameraHeight);
  read = { cameraHeight: Number.isInteger(h) && h >= 180 && h <= 1080 ? h : DEFAULTS.cameraHeight };
  return read;
}
