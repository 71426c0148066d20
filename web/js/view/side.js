// The side panel, as the meeting drives it: the people list and the room
// settings (drawn by panel.js), the live-stream dialog (live.js), chat in
// and out with the unread count on its button, and opening the panel
// (by its button, or for a moderator when someone waits in the lobby).

import { S } from '../i18n.js';
import { setIconLabel } from '../icons.js';
import { $ } from './dom.js';
import { wireLiveStream } from './live.js';
import { appendChat, nameOf, RECIPIENT_GONE, renderPeople, toast, wireSettings } from './panel.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/**
 * Fills in `ui.renderPanel` and `ui.setSide`.
 * @param {MeetingUi} ui
 */
export function wireSide(ui) {
  const { meeting, name } = ui;
  ui.renderPanel = () => { renderPeople(meeting, name); ui.renderSelf(); };
  ui.onLanguage(ui.renderPanel);
  wireSettings(meeting);
  ui.onLanguage(wireLiveStream(meeting));
  for (const ev of ['self', 'room', 'lobby', 'participants', 'e2ee']) meeting.addEventListener(ev, ui.renderPanel);
  meeting.addEventListener('lobby', () => { if (meeting.moderator && meeting.waiting.size > 0) ui.setSide(true); });

  let unread = 0;
  const renderUnread = () => {
    $('unread').textContent = unread ? String(unread) : '';
    $('unread').hidden = unread === 0;
    setIconLabel($('side-btn'), 'chat', unread ? `${S().panel} (${S().unread(unread)})` : S().panel);
  };
  ui.onLanguage(renderUnread);
  // Open, nothing in it is unread.
  ui.setSide = (open) => {
    $('side').hidden = !open;
    $('side-btn').setAttribute('aria-expanded', String(open));
    if (open) { unread = 0; renderUnread(); }
    ui.layout();
  };
  $('side-btn').onclick = (/** @type {MouseEvent} */ e) => {
    ui.setSide($('side').hidden);
    // Opened from the keyboard (shortcut or Enter): straight to the chat box.
    if (!$('side').hidden && e.detail === 0) $('chat-input').focus();
  };
  meeting.addEventListener('chat', (ev) => {
    const { from, text, private: priv } = /** @type {CustomEvent} */ (ev).detail;
    const label = priv ? S().privateFrom(nameOf(meeting, from)) : nameOf(meeting, from);
    appendChat(label, text ?? S().chatUndecryptable, priv, false, text === null);
    // With the panel closed, the chat button counts what is new.
    if ($('side').hidden) { unread++; renderUnread(); }
  });
  $('chat-form').onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const text = String($('chat-input').value);
    if (!text.trim()) return;
    if ($('chat-to').value === RECIPIENT_GONE) { toast(S().recipientGone); $('chat-to').focus(); return; }
    const to = $('chat-to').value ? Number($('chat-to').value) : undefined;
    const label = to === undefined ? `${name ?? S().guest} (${S().you})` : S().privateTo(nameOf(meeting, to));
    $('chat-input').value = '';
    meeting.sendChat(text, to).then(
      () => appendChat(label, text, to !== undefined, true),
      () => { toast(S().chatNotSealed); $('chat-input').value = text; },
    );
  };
}
