// The side panel: participants (with the moderator's controls), the lobby
// queue, the room settings, and chat. Text from others is only ever set as
// text; links become <a> elements built here, never parsed HTML.

import { S } from '../i18n.js';
import { trustMark, trustOf } from './verify.js';

/** @typedef {import('../meeting.js').Meeting} Meeting */

/**
 * @param {string} tag @param {Record<string, string>} [attrs] @param {(Node|string)[]} [children]
 * @returns {HTMLElement}
 */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** @param {string} label @param {string} cls @param {() => void} onClick */
function button(label, cls, onClick) {
  const b = el('button', { class: cls, type: 'button' }, [label]);
  b.onclick = onClick;
  return b;
}

/** @param {Meeting} m @param {number} id */
export function nameOf(m, id) {
  return m.participants.get(id)?.name ?? S().guest;
}

/**
 * Participants, moderator actions, lobby queue and settings.
 * @param {Meeting} m @param {string|undefined} myName
 */
export function renderPeople(m, myName) {
  const list = /** @type {HTMLElement} */ (document.getElementById('people-list'));
  list.replaceChildren();
  const me = el('li', { 'data-participant': 'self' }, [
    el('span', { class: 'pname' }, [`${myName ?? S().guest} (${S().you})`]),
  ]);
  if (m.moderator) me.append(el('span', { class: 'badge moderator' }, [S().moderatorBadge]));
  if (m.audioMuted) me.append(el('span', { class: 'badge' }, [S().mutedLabel]));
  if (m.handRaised) me.append(el('span', { class: 'badge hand' }, [S().handRaised]));
  list.append(me);
  for (const p of m.participants.values()) {
    const li = el('li', { 'data-participant': String(p.id) }, [el('span', { class: 'pname' }, [p.name ?? S().guest])]);
    if (p.moderator) li.append(el('span', { class: 'badge moderator' }, [S().moderatorBadge]));
    if (p.audio_muted) li.append(el('span', { class: 'badge muted' }, [S().mutedLabel]));
    if (p.hand_raised) li.append(el('span', { class: 'badge hand' }, [S().handRaised]));
    const mark = trustMark(trustOf(m, p.id));
    if (mark) li.append(el('span', { class: `badge ${mark.cls}`, title: mark.title }, [mark.text]));
    if (m.moderator) {
      if (p.audio_muted) li.append(button(S().askUnmute, 'ask-unmute', () => m.request('ask_unmute', { id: p.id })));
      else li.append(button(S().mute, 'mute', () => m.request('mute', { id: p.id })));
      if (!p.moderator) li.append(button(S().makeModerator, 'make-moderator', () => m.request('grant_moderator', { id: p.id })));
      li.append(button(S().remove, 'remove danger', async () => {
        if (await confirmAction(S().confirmRemove(p.name ?? S().guest), S().remove)) m.request('remove', { id: p.id });
      }));
    }
    list.append(li);
  }

  const waitingBox = /** @type {HTMLElement} */ (document.getElementById('waiting'));
  const waitingList = /** @type {HTMLElement} */ (document.getElementById('waiting-list'));
  waitingList.replaceChildren();
  for (const [id, name] of m.waiting) {
    waitingList.append(el('li', { 'data-waiting': String(id) }, [
      el('span', { class: 'pname' }, [name ?? S().guest]),
      button(S().admit, 'admit primary', () => m.request('admit', { id })),
      button(S().refuse, 'refuse danger', () => m.request('refuse', { id })),
    ]));
  }
  waitingBox.hidden = !m.moderator || m.waiting.size === 0;

  /** @type {HTMLDetailsElement} */ (document.getElementById('settings')).hidden = !m.moderator;
  /** @type {HTMLInputElement} */ (document.getElementById('lock')).checked = m.roomState.locked;
  /** @type {HTMLInputElement} */ (document.getElementById('lobby')).checked = m.roomState.lobby;
  /** @type {HTMLButtonElement} */ (document.getElementById('remove-password')).hidden = !m.roomState.password;
  const badges = /** @type {HTMLElement} */ (document.getElementById('room-badges'));
  badges.replaceChildren();
  if (m.roomState.password) badges.append(el('span', { class: 'badge' }, [S().protectedBadge]));
  if (m.roomState.locked) badges.append(el('span', { class: 'badge' }, [S().lockedBadge]));

  // The chat recipient choice follows who is here. If the one we were
  // writing to privately leaves (or reconnects under a new id), the choice
  // says so and sending waits for a new one: never a silent fall back to
  // everyone, which would send the next private message to the whole room.
  const to = /** @type {HTMLSelectElement} */ (document.getElementById('chat-to'));
  const chosen = to.value;
  const chosenName = to.selectedOptions[0]?.dataset.name ?? S().guest;
  to.replaceChildren(el('option', { value: '' }, [S().everyone]));
  for (const p of m.participants.values()) {
    const name = p.name ?? S().guest;
    to.append(el('option', { value: String(p.id), 'data-name': name }, [S().privateTo(name)]));
  }
  if ([...to.options].some((o) => o.value === chosen)) {
    to.value = chosen;
  } else {
    to.append(el('option', { value: RECIPIENT_GONE, 'data-name': chosenName, disabled: '' }, [S().recipientLeft(chosenName)]));
    to.value = RECIPIENT_GONE;
  }
}

/** The chat recipient's value while the chosen private recipient is gone. */
export const RECIPIENT_GONE = 'gone';

/** Wires the settings controls once. @param {Meeting} m */
export function wireSettings(m) {
  const pw = /** @type {HTMLInputElement} */ (document.getElementById('new-password'));
  /** @type {HTMLFormElement} */ (document.getElementById('pw-form')).onsubmit = (e) => {
    e.preventDefault();
    if (pw.value) m.request('set_password', { password: pw.value });
    pw.value = '';
  };
  /** @type {HTMLElement} */ (document.getElementById('remove-password')).onclick = () => m.request('set_password', { password: null });
  const lock = /** @type {HTMLInputElement} */ (document.getElementById('lock'));
  lock.onchange = () => m.request('set_lock', { locked: lock.checked });
  const lobby = /** @type {HTMLInputElement} */ (document.getElementById('lobby'));
  lobby.onchange = () => m.request('set_lobby', { enabled: lobby.checked });
  /** @type {HTMLElement} */ (document.getElementById('mute-all')).onclick = () => m.request('mute_all');
  /** @type {HTMLElement} */ (document.getElementById('end-meeting')).onclick = async () => {
    if (await confirmAction(S().confirmEnd, S().endMeeting)) m.request('end_meeting');
  };
}

/**
 * Asks before a moderator's action that cannot be undone. Cancel has the
 * focus (Enter or Escape keep things as they are).
 * @param {string} question @param {string} action the confirming button's label
 * @returns {Promise<boolean>}
 */
export function confirmAction(question, action) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('confirm-dialog'));
  // One question at a time: a second click while it is asked does nothing.
  if (dialog.open) return Promise.resolve(false);
  /** @type {HTMLElement} */ (document.getElementById('confirm-text')).textContent = question;
  /** @type {HTMLElement} */ (document.getElementById('confirm-ok')).textContent = action;
  dialog.returnValue = '';
  dialog.showModal();
  /** @type {HTMLElement} */ (document.getElementById('confirm-cancel')).focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

const URL_RE = /(https?:\/\/[^\s<>"']+)/g;

/**
 * Chat text as nodes: plain text, with http(s) links as anchors that open
 * in a new tab without access to this page.
 * @param {string} text
 * @returns {Node[]}
 */
export function linkify(text) {
  /** @type {Node[]} */
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const at = match.index ?? 0;
    if (at > last) out.push(document.createTextNode(text.slice(last, at)));
    const a = el('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer' }, [match[0]]);
    out.push(a);
    last = at + match[0].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/**
 * @param {string} from a label (already localised)
 * @param {string} text @param {boolean} isPrivate @param {boolean} mine
 * @param {boolean} [undecryptable] a sealed message that did not open (`text` says so)
 */
export function appendChat(from, text, isPrivate, mine, undecryptable = false) {
  const list = /** @type {HTMLElement} */ (document.getElementById('messages'));
  const classes = [isPrivate && 'private', mine && 'mine', undecryptable && 'undecryptable'].filter(Boolean).join(' ');
  const li = el('li', { class: classes }, [
    el('span', { class: 'from' }, [from]),
    ...linkify(text),
  ]);
  list.append(li);
  li.scrollIntoView({ block: 'end' });
}

/**
 * A short-lived notice. The box of notices is the live region (a log: a
 * new one is read, the others are not read again); a notice has no role
 * of its own, which would make screen readers say it twice.
 * @param {string} text
 */
export function toast(text) {
  const box = /** @type {HTMLElement} */ (document.getElementById('toasts'));
  const t = el('div', { class: 'toast' }, [text]);
  box.append(t);
  setTimeout(() => t.remove(), 6000);
}
