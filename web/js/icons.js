// The client's icons: inline SVG drawn from these paths (24×24, stroked in
// the text colour), shipped with the page — nothing fetched from anywhere.
// A button shows its icon and says what it does in a label that screen
// readers read and, in the toolbar, sighted users see as a tooltip.

const PATHS = {
  mic: 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z M5 11a7 7 0 0 0 14 0 M12 18v3',
  micOff: 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z M5 11a7 7 0 0 0 14 0 M12 18v3 M3 3l18 18',
  cam: 'M3 7h12v10H3z M15 10l6-3v10l-6-3',
  camOff: 'M3 7h12v10H3z M15 10l6-3v10l-6-3 M3 3l18 18',
  share: 'M3 4h18v12H3z M8 20h8 M12 16v4 M12 13V7 M9 10l3-3 3 3',
  stopShare: 'M3 4h18v12H3z M8 20h8 M12 16v4 M9 7l6 6 M15 7l-6 6',
  hand: 'M8 12V6a1.5 1.5 0 0 1 3 0v5 M11 11V4.5a1.5 1.5 0 0 1 3 0V11 M14 11V6a1.5 1.5 0 0 1 3 0v8a7 7 0 0 1-7 7 6 6 0 0 1-5-3l-2.5-4a1.5 1.5 0 0 1 2.5-1.6L8 15',
  chat: 'M4 5h16v11H10l-5 4v-4H4z M8 9h8 M8 12h5',
  more: 'M5 12h.01 M12 12h.01 M19 12h.01',
  leave: 'M14 4h5v16h-5 M10 8l-4 4 4 4 M6 12h10',
  link: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1 M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1',
  live: 'M12 12h.01 M8.5 8.5a5 5 0 0 0 0 7 M15.5 8.5a5 5 0 0 1 0 7 M5.6 5.6a9 9 0 0 0 0 12.8 M18.4 5.6a9 9 0 0 1 0 12.8',
  grid: 'M4 4h7v7H4z M13 4h7v7h-7z M4 13h7v7H4z M13 13h7v7h-7z',
  stage: 'M3 4h18v11H3z M4 19h4 M10 19h4 M16 19h4',
  keyboard: 'M3 6h18v12H3z M7 10h.01 M11 10h.01 M15 10h.01 M7 14h10',
  selfView: 'M3 5h18v14H3z M13 12h6v5h-6z',
  lock: 'M6 11h12v9H6z M8 11V8a4 4 0 0 1 8 0v3',
  signal: 'M6 19v-4 M12 19v-8 M18 19V7',
  prev: 'M15 5l-7 7 7 7',
  next: 'M9 5l7 7-7 7',
};

/** @typedef {keyof typeof PATHS} IconName */

const SVG = 'http://www.w3.org/2000/svg';

/**
 * An icon element, hidden from screen readers (the label speaks).
 * @param {IconName} name
 */
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('icon');
  svg.dataset.icon = name;
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', PATHS[name]);
  svg.append(path);
  return svg;
}

/**
 * Gives every `[data-icon]` element its icon, first in it (once).
 * @param {ParentNode} root
 */
export function decorate(root) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    if (el.querySelector(':scope > svg.icon')) continue;
    el.prepend(icon(/** @type {IconName} */ (/** @type {HTMLElement} */ (el).dataset.icon)));
  }
}

/**
 * Sets a button's icon and label; the label is also its tooltip (with the
 * shortcut key, if it has one).
 * @param {HTMLElement} el a button with a `.label` child
 * @param {IconName} name @param {string} label
 */
export function setIconLabel(el, name, label) {
  const old = el.querySelector(':scope > svg.icon');
  if (/** @type {SVGElement|null} */ (old)?.dataset.icon !== name) {
    const fresh = icon(name);
    if (old) old.replaceWith(fresh);
    else el.prepend(fresh);
  }
  const span = el.querySelector(':scope > .label');
  if (span) span.textContent = label;
  const key = el.getAttribute('aria-keyshortcuts');
  el.title = key ? `${label} (${key})` : label;
}
