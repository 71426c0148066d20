// Live streaming in the meeting view: the LIVE badge everyone sees, and the
// moderators' "Live stream" dialog. The stream key is typed here and sent
// once in `stream_start`; it is never stored (not even in localStorage).

import { S } from '../i18n.js';
import { toast } from './panel.js';
import { YOUTUBE_INGEST, streamActive, streamUrl } from '../protocol.js';
import { $ } from './dom.js';


/**
 * Wires the badge and the dialog to `meeting`; returns a re-render hook
 * (for a language switch).
 * @param {import('../meeting.js').Meeting} meeting
 * @returns {() => void}
 */
export function wireLiveStream(meeting) {
  const dialog = /** @type {HTMLDialogElement} */ ($('stream-dialog'));
  $('stream-ingest').value = YOUTUBE_INGEST;
  /** @type {string|null} the last state told, to announce changes once */
  let told = null;

  const render = () => {
    const st = meeting.live?.state ?? null;
    const badge = $('live-badge');
    badge.hidden = !streamActive(st);
    badge.textContent = st === 'live' ? S().streamLive : st === 'reconnecting' ? S().streamReconnecting : S().streamStarting;
    badge.classList.toggle('on-air', st === 'live');
    badge.dataset.state = st ?? '';

    // Moderators only; in an encrypted meeting or without a worker the
    // dialog says why it cannot stream instead of offering to.
    $('stream-btn').hidden = !meeting.moderator;
    if (!meeting.moderator && dialog.open) dialog.close();
    const blocked = meeting.e2ee ? S().streamE2ee
      : meeting.streamUnavailable ? S().streamUnavailable(meeting.streamUnavailable) : null;
    $('stream-unavailable').hidden = !blocked;
    $('stream-unavailable').textContent = blocked ?? '';
    const active = streamActive(st);
    $('stream-go').hidden = active;
    $('stream-go').disabled = !!blocked;
    $('stream-ingest').disabled = active || !!blocked;
    $('stream-key').disabled = active || !!blocked;
    $('stream-stop').hidden = !active;
    $('stream-status').textContent = st === 'starting' ? S().streamStateStarting
      : st === 'live' ? S().streamStateLive
        : st === 'reconnecting' ? S().streamStateReconnecting
          : st === 'failed' ? S().streamFailed(meeting.live?.reason ?? '')
            : '';
  };

  meeting.addEventListener('live', () => {
    const st = meeting.live?.state ?? null;
    if (st !== told && st !== null) {
      if (st === 'live' && told !== 'reconnecting') toast(S().streamNowLive);
      else if (st === 'stopped') toast(S().streamStopped);
      else if (st === 'failed') toast(S().streamFailed(meeting.live?.reason ?? ''));
    }
    told = st;
    render();
  });
  meeting.addEventListener('self', render);
  meeting.addEventListener('room', render);

  $('stream-btn').onclick = () => { render(); dialog.showModal(); };
  $('stream-close').onclick = () => dialog.close();
  $('stream-stop').onclick = () => meeting.stopStream();
  $('stream-form').onsubmit = (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    const key = String($('stream-key').value);
    const url = streamUrl(String($('stream-ingest').value), key);
    // Without a key the URL must carry one itself; YouTube's bare ingest does not.
    if (!url || (!key.trim() && url.replace(/\/+$/, '') === YOUTUBE_INGEST)) {
      $('stream-status').textContent = S().streamBadUrl;
      return;
    }
    meeting.startStream(url);
    // The key leaves the page's memory as soon as it is sent; the badge
    // (and the dialog, opened again) show how going live goes.
    $('stream-key').value = '';
    dialog.close();
  };
  render();
  return render;
}
