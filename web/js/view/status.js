// How the meeting is going, told to the user: the banner (connecting,
// reconnecting, the server restarting, media failing), the screens a
// meeting passes through (password, unprotected, lobby, ended), a room
// that lives on another node, and the toasts for what happens to one.

import { S } from '../i18n.js';
import { CloseCode, E2EE_WRONG_KEY } from '../protocol.js';
import { $, announce, show } from './dom.js';
import { closeText, showEnded } from './ended.js';
import { confirmAction, nameOf, toast } from './panel.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/**
 * The banner, the meeting's states and the door (password, unprotected
 * room, lobby); fills in `ui.setBanner`.
 * @param {MeetingUi} ui
 */
export function wireStatus(ui) {
  const { meeting, key } = ui;
  const banner = $('banner');
  ui.setBanner = (text) => {
    if (text && text !== banner.textContent) announce(text);
    banner.textContent = text ?? '';
    banner.hidden = !text;
  };
  let restarting = false;
  meeting.addEventListener('state', (ev) => {
    const { state, reason, code } = /** @type {CustomEvent} */ (ev).detail;
    // A server that said it is restarting is not reachable for a while;
    // the failed attempts meanwhile do not change that story.
    if (state === 'reconnecting' && code === CloseCode.GOING_AWAY) restarting = true;
    else if (state !== 'connecting' && state !== 'reconnecting') restarting = false;
    if (restarting) ui.setBanner(S().serverRestarting);
    else if (state === 'connecting') ui.setBanner(S().connecting);
    // Until media connects once more, say why it did not last time.
    else if (state === 'joined') ui.setBanner(meeting.mediaFailing ? S().mediaFailed : null);
    else if (state === 'reconnecting') ui.setBanner(code === CloseCode.MEDIA_FAILED ? S().mediaFailed : S().reconnecting);
    else if (state === 'left') showEnded(S().leftTitle, '', true, key);
    else if (state === 'failed') {
      // Coming back cannot help after these.
      const final = [CloseCode.REMOVED, CloseCode.E2EE_REQUIRED, CloseCode.NOT_E2EE, E2EE_WRONG_KEY].includes(code);
      showEnded(S().failedTitle, closeText(code) ?? reason ?? '', !final, key);
    }
    else if (state === 'password') show('password-view');
    else if (state === 'unprotected') show('unprotected-view');
    else if (state === 'lobby') show('lobby-view');
    if (state === 'joined') show('meeting');
  });
  meeting.addEventListener('media', () => { if (meeting.state === 'joined') ui.setBanner(null); });
  wireRelocate(ui);
  meeting.addEventListener('password', (ev) => {
    const { wrong, retryAfterMs } = /** @type {CustomEvent} */ (ev).detail;
    const msg = $('password-msg');
    msg.textContent = retryAfterMs ? S().passwordWait(Math.ceil(retryAfterMs / 1000)) : wrong ? S().passwordWrong : '';
    msg.hidden = !msg.textContent;
    $('password-input').focus();
  });
  $('unprotected-join').onclick = () => meeting.joinAnyway();
  $('unprotected-leave').onclick = () => meeting.leave();
  $('password-form').onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    meeting.submitPassword(String($('password-input').value));
    $('password-input').value = '';
  };
}

/**
 * In a cluster, the room may live on a node that started after this page
 * loaded: the browser refuses to connect there, so the meeting is opened
 * on that node's own page, with the key, name and mute states (never the
 * password) in the fragment, which does not reach any server.
 * @param {MeetingUi} ui
 */
function wireRelocate(ui) {
  const { meeting, key, room } = ui;
  document.addEventListener('securitypolicyviolation', (ev) => {
    if (ev.effectiveDirective === 'connect-src') meeting.blocked(ev.blockedURI);
  });
  meeting.addEventListener('relocate', async (ev) => {
    const { origin } = /** @type {CustomEvent} */ (ev).detail;
    const frag = new URLSearchParams();
    if (key) frag.set('key', key.text);
    if (meeting.name) frag.set('name', meeting.name);
    if (meeting.audioMuted) frag.set('mic', 'off');
    if (meeting.videoMuted) frag.set('camera', 'off');
    // The key goes to another origin's page only when the user says so,
    // and the page there asks again before camera and microphone go on.
    const question = key ? S().relocateKey(origin) : S().relocate(origin);
    if (await confirmAction(question, S().relocateOk)) location.assign(`${origin}/${room}#${frag}`);
    else showEnded(S().failedTitle, S().relocateDeclined(origin), true, key);
  });
}

/**
 * Toasts for what others do to one or in the room (muted by a moderator,
 * asked to unmute, a request refused, someone joining or leaving).
 * @param {MeetingUi} ui
 */
export function wireNotices(ui) {
  const { meeting } = ui;
  meeting.addEventListener('notice', (ev) => {
    const { kind, id, message, request, name } = /** @type {CustomEvent} */ (ev).detail;
    if (kind === 'muted_by') { toast(S().mutedByNotice); ui.renderSelf(); }
    else if (kind === 'unmute_request') toast(S().unmuteRequestNotice);
    else if (kind === 'refused') {
      // The server's reason is English; show ours, in the user's language.
      console.info(`refused ${request}: ${message}`);
      toast(request === 'chat' ? S().chatRefused : S().refusedGeneric);
    }
    else if (kind === 'joined') toast(S().joinedNotice(nameOf(meeting, id)));
    else if (kind === 'left') toast(S().leftNotice(name ?? S().guest));
  });
}
