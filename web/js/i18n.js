// Picks the UI language (saved choice, else the browser's), and looks
// strings up. Of the DOM it touches only the page's `lang` attribute.

import { loadSetting, saveSetting } from './storage.js';
import { languages } from './strings.js';

const KEY = 'aconfi.lang';

/** @typedef {keyof typeof languages} Lang */

/** @returns {Lang} */
function initial() {
  const saved = loadSetting(KEY);
  if (saved === 'en' || saved === 'de') return saved;
  for (const l of navigator.languages ?? [navigator.language]) {
    if (l.toLowerCase().startsWith('de')) return 'de';
    if (l.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

/** @type {Lang} */
let current = initial();

export const lang = () => current;

/** @param {string} l */
export function setLang(l) {
  if (l !== 'en' && l !== 'de') return;
  current = l;
  saveSetting(KEY, l);
  document.documentElement.lang = l;
}

/** The strings of the current language. */
export const S = () => languages[current];
