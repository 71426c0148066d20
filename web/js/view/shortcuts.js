// The meeting's keyboard shortcuts: a key presses its toolbar button (the
// buttons say theirs in `aria-keyshortcuts`), and "?" lists them.

import { S } from '../i18n.js';
import { $ } from './dom.js';

/**
 * The meeting's keyboard shortcuts: key → the toolbar button it presses.
 * The buttons say theirs in `aria-keyshortcuts`.
 */
const SHORTCUTS = /** @type {const} */ ([
  ['m', 'mic', 'shortcutMic'], ['v', 'cam', 'shortcutCam'], ['s', 'share', 'shortcutShare'],
  ['c', 'side-btn', 'shortcutChat'], ['r', 'hand', 'shortcutHand'], ['?', null, 'shortcutHelp'],
]);

/**
 * Whether a key press goes to something the user types into (then it is
 * theirs, not a shortcut).
 * @param {EventTarget|null} target
 */
function typingInto(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !['button', 'checkbox', 'radio', 'submit', 'reset'].includes(target.type);
}

/** Fills the shortcut list in the current language and shows it. */
export function showShortcuts() {
  const list = $('shortcuts-list');
  list.replaceChildren();
  for (const [key, , label] of SHORTCUTS) {
    const dt = document.createElement('dt');
    const kbd = document.createElement('kbd');
    kbd.textContent = key.toUpperCase();
    dt.append(kbd);
    const dd = document.createElement('dd');
    dd.textContent = S()[label];
    list.append(dt, dd);
  }
  const dialog = /** @type {HTMLDialogElement} */ ($('shortcuts-dialog'));
  if (!dialog.open) dialog.showModal();
}

/**
 * Presses the toolbar button of a shortcut key, while the meeting is on
 * screen, no dialog is open and the key is not typed into a field.
 * @param {KeyboardEvent} e
 */
export function onShortcut(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || e.defaultPrevented || typingInto(e.target)) return;
  if ($('meeting').hidden || document.querySelector('dialog[open]')) return;
  const hit = SHORTCUTS.find(([key]) => key === e.key.toLowerCase());
  if (!hit) return;
  e.preventDefault();
  const [, id] = hit;
  if (id === null) { showShortcuts(); return; }
  const button = /** @type {HTMLButtonElement} */ ($(id));
  if (button.hidden || button.disabled) return;
  button.click();
}
