// The page: picks the screen from the address (landing, prejoin, meeting,
// or why a link cannot work), switches the language, and composes the
// meeting screen from its views (view/*.js), which share one MeetingUi
// (view/ui.js). The views talk to the server only through Meeting
// (meeting.js); app.js itself draws nothing.

import { S, lang, setLang } from './i18n.js';
import { Meeting } from './meeting.js';
import { normaliseRoomName, parseFragment } from './protocol.js';
import { secretFromFragment } from './e2ee/link.js';
import { frameApi } from './frames.js';
import { decorate, setIconLabel } from './icons.js';
import { embedMeeting, isFramed } from './embed.js';
import { loadSetting } from './storage.js';
import { acquire } from './devices.js';
import { show } from './view/dom.js';
import { showEnded } from './view/ended.js';
import { wireGrid } from './view/grid.js';
import { landing } from './view/landing.js';
import { NAME_KEY, prejoin } from './view/prejoin.js';
import { wireQuality } from './view/quality.js';
import { wireSelfView } from './view/selfview.js';
import { wireSide } from './view/side.js';
import { wireNotices, wireStatus } from './view/status.js';
import { wireTiles } from './view/tiles.js';
import { wireToolbar } from './view/toolbar.js';
import { meetingUi } from './view/ui.js';

/**
 * The end-to-end key of this meeting's link, if it has one: its bytes and
 * its text as in the link (kept for "copy link" and "rejoin"; never stored).
 * @type {{secret: Uint8Array, text: string}|null}
 */
let meetingKey = null;
/** @type {Array<() => void>} re-render hooks for a language switch */
const rerender = [];

/** Every text of the page in the current language (`data-s`, `data-ph`, `data-s-label`), then the views' own. */
function applyStrings() {
  document.documentElement.lang = lang();
  for (const el of document.querySelectorAll('[data-s]')) {
    const v = /** @type {any} */ (S())[/** @type {HTMLElement} */ (el).dataset.s ?? ''];
    if (typeof v === 'string') el.textContent = v;
  }
  for (const el of document.querySelectorAll('[data-ph]')) {
    const v = /** @type {any} */ (S())[/** @type {HTMLElement} */ (el).dataset.ph ?? ''];
    if (typeof v === 'string') /** @type {HTMLInputElement} */ (el).placeholder = v;
  }
  for (const el of document.querySelectorAll('[data-s-label]')) {
    const v = /** @type {any} */ (S())[/** @type {HTMLElement} */ (el).dataset.sLabel ?? ''];
    if (typeof v === 'string') el.setAttribute('aria-label', v);
  }
  // Icon buttons with a fixed label: the label is the tooltip too.
  for (const el of document.querySelectorAll('[data-icon]')) {
    const label = el.querySelector(':scope > .label[data-s]');
    if (label) setIconLabel(/** @type {HTMLElement} */ (el), /** @type {any} */ (el).dataset.icon, label.textContent ?? '');
  }
  for (const sel of document.querySelectorAll('.lang-select')) /** @type {HTMLSelectElement} */ (sel).value = lang();
  for (const f of rerender) f();
}

function main() {
  decorate(document);
  for (const sel of document.querySelectorAll('.lang-select')) {
    sel.addEventListener('change', () => { setLang(/** @type {HTMLSelectElement} */ (sel).value); applyStrings(); });
  }
  applyStrings();
  const path = decodeURIComponent(location.pathname.replace(/^\/+/, ''));
  if (!path) return landing();
  const room = normaliseRoomName(path);
  if (!room) return showEnded(S().failedTitle, S().invalidRoom, false);
  const key = secretFromFragment(location.hash);
  if (key === 'invalid') return showEnded(S().failedTitle, S().e2eeBadLink, false);
  if (key && !frameApi()) return showEnded(S().failedTitle, S().e2eeUnsupported, false);
  meetingKey = key;
  const frag = parseFragment(location.hash);
  const name = frag.name ?? loadSetting(NAME_KEY) ?? undefined;
  // `#autojoin=1` joins by itself only inside a frame, which only a site
  // the operator allowed (--frame-ancestors) can make: anywhere else a
  // link must not put someone's camera and microphone into a stranger's
  // meeting without a click. There it fills in the prejoin screen.
  if (frag.autojoin && isFramed()) {
    acquire(!frag.micOff, !frag.cameraOff).then((stream) =>
      joinMeeting(room, name, stream, frag.micOff || stream.getAudioTracks().length === 0,
        frag.cameraOff || stream.getVideoTracks().length === 0));
  } else {
    prejoin(room, name, frag, Boolean(meetingKey), (n, stream, audioMuted, videoMuted) =>
      joinMeeting(room, n, stream, audioMuted, videoMuted));
  }
}

/**
 * The meeting screen: a Meeting, and the views wired to it (in this
 * order: each view's listeners run in it).
 * @param {string} room @param {string|undefined} name @param {MediaStream} stream
 * @param {boolean} audioMuted @param {boolean} videoMuted
 */
function joinMeeting(room, name, stream, audioMuted, videoMuted) {
  show('meeting');
  for (const t of stream.getAudioTracks()) t.enabled = !audioMuted;
  if (videoMuted) for (const t of stream.getVideoTracks()) { t.stop(); stream.removeTrack(t); }
  const meeting = new Meeting({ room, name, stream, audioMuted, videoMuted, secret: meetingKey?.secret });
  /** @type {any} */ (window).aconfi = meeting; // for debugging and the browser tests
  embedMeeting(meeting);
  const ui = meetingUi({ meeting, room, name, stream, key: meetingKey, onLanguage: (f) => { rerender.push(f); } });
  wireSelfView(ui);
  wireTiles(ui);
  wireGrid(ui);
  wireQuality(ui);
  wireStatus(ui);
  wireSide(ui);
  wireNotices(ui);
  wireToolbar(ui);
  window.addEventListener('pagehide', () => meeting.leave());
  ui.setBanner(S().connecting);
  ui.renderCount();
  meeting.start();
}

main();
