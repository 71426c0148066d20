// Small DOM helpers every view uses: find an element, show one screen,
// speak to screen readers, render an on/off button, play a video.

import { setIconLabel } from '../icons.js';

/** @param {string} id @returns {any} */
export const $ = (id) => document.getElementById(id);

/**
 * Shows one of the page's screens (`.view`: landing, prejoin, meeting,
 * password, lobby, ended …) and hides the others.
 * @param {string} id
 */
export function show(id) {
  for (const v of document.querySelectorAll('.view')) /** @type {HTMLElement} */ (v).hidden = v.id !== id;
}

/**
 * Says `text` to screen-reader users through the meeting's one live region
 * (the banner and the muted hint are shown to sighted users and announced
 * here).
 * @param {string} text
 */
export function announce(text) {
  const region = $('announcer');
  // The same words again are a new announcement only after a change.
  region.textContent = '';
  requestAnimationFrame(() => { region.textContent = text; });
}

/**
 * An on/off button: its icon and label say the state.
 * @param {HTMLElement} el @param {boolean} on
 * @param {[import('../icons.js').IconName, string]} onLook @param {[import('../icons.js').IconName, string]} offLook
 */
export function setToggle(el, on, onLook, offLook) {
  const [name, label] = on ? onLook : offLook;
  setIconLabel(el, name, label);
  el.setAttribute('aria-pressed', String(on));
  el.classList.toggle('off', !on);
}

/** @param {HTMLVideoElement} video */
export function play(video) {
  video.play().catch(() => {
    // Autoplay with sound needs a gesture: show the picture now, sound on first click.
    video.muted = true;
    video.play().catch(() => {});
    document.addEventListener('click', () => { video.muted = false; }, { once: true });
  });
}
