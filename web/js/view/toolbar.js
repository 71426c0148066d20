// The toolbar: microphone, camera, hand, screen share, copy link, leave,
// the "more" menu and the keyboard shortcuts. What the buttons show of
// one's own state is drawn by selfview.js (`ui.renderSelf`).

import { S } from '../i18n.js';
import { acquire } from '../devices.js';
import { $ } from './dom.js';
import { toast } from './panel.js';
import { onShortcut, showShortcuts } from './shortcuts.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/** @param {MeetingUi} ui */
export function wireToolbar(ui) {
  const { meeting, self, stream, key } = ui;
  $('hand').onclick = () => { meeting.raiseHand(!meeting.handRaised); ui.renderPanel(); };
  $('share').hidden = !navigator.mediaDevices?.getDisplayMedia;
  $('share').onclick = async () => {
    try {
      if (meeting.screenSharing) await meeting.stopScreen();
      else await meeting.shareScreen();
    } catch { /* the user cancelled the picker */ }
    ui.renderSelf();
  };
  wireMoreMenu();
  $('shortcuts-btn').onclick = showShortcuts;
  document.onkeydown = onShortcut;
  $('mic').onclick = async () => {
    if (meeting.audioMuted && meeting.stream.getAudioTracks().length === 0) {
      // Joined without a microphone (the link said mic=off, or it was not
      // allowed then): ask for it now, on the sender that was kept for it.
      const track = (await acquire(true, false)).getAudioTracks()[0];
      if (!track) { toast(S().noMicrophone); return; }
      await meeting.replaceAudioTrack(track);
    }
    meeting.setAudioMuted(!meeting.audioMuted);
    ui.renderSelf();
  };
  $('cam').onclick = async () => {
    if (meeting.videoMuted) {
      const s = await acquire(false, true);
      const track = s.getVideoTracks()[0];
      if (!track) return;
      await meeting.setVideoMuted(false, track);
    } else {
      await meeting.setVideoMuted(true, null);
    }
    self.video.srcObject = stream;
    ui.renderSelf();
  };
  $('copy').onclick = async () => {
    // The key travels with the link; nothing else of the fragment does.
    const link = `${location.origin}${location.pathname}${key ? `#key=${key.text}` : ''}`;
    try { await navigator.clipboard.writeText(link); } catch { /* clipboard denied: show it instead */ }
    ui.setBanner(`${S().linkCopied}: ${link}`);
    setTimeout(() => { if ($('banner').textContent?.startsWith(S().linkCopied)) ui.setBanner(null); }, 3000);
  };
  $('leave').onclick = () => {
    meeting.leave();
    for (const t of stream.getTracks()) t.stop();
  };
}

/**
 * The "more" menu of the toolbar: a button that shows or hides a list of
 * the less-used actions. Choosing one, Escape, or a click elsewhere
 * closes it; opened from the keyboard, the focus goes to its first item.
 */
function wireMoreMenu() {
  const menu = $('more-menu');
  const button = $('more-btn');
  /** @param {boolean} open @param {boolean} [focus] */
  const setOpen = (open, focus = false) => {
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open && focus) /** @type {HTMLElement|null} */ (menu.querySelector('button:not([hidden]), select'))?.focus();
  };
  button.onclick = (/** @type {MouseEvent} */ e) => setOpen(menu.hidden, e.detail === 0);
  menu.addEventListener('click', (/** @type {MouseEvent} */ e) => {
    if (e.target instanceof Element && e.target.closest('button')) setOpen(false);
  });
  menu.parentElement.addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    if (e.key === 'Escape' && !menu.hidden) { e.preventDefault(); setOpen(false); button.focus(); }
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !(e.target instanceof Element && e.target.closest('.more'))) setOpen(false);
  });
}
