// One's own tile: one's picture (in the grid, or small in a corner where
// it can be dragged, as the user prefers), the voice meter that lights it
// while one talks and says "you are muted" when one talks muted, and the
// toolbar's toggles that show one's own state.

import { S } from '../i18n.js';
import { setIconLabel } from '../icons.js';
import { loadSetting, saveSetting } from '../storage.js';
import { voiceFeedback } from '../voice.js';
import { $, announce, setToggle } from './dom.js';
import { updateTile } from './tile.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/** Where one's own picture goes: 'grid' (the default) or 'float'. */
const SELF_VIEW_KEY = 'aconfi.selfView';

/**
 * Puts one's own tile in the grid and fills in `ui.renderSelf` and
 * `ui.placeSelf`.
 * @param {MeetingUi} ui
 */
export function wireSelfView(ui) {
  const { meeting, grid, self, name } = ui;
  self.video.muted = true;
  // A video element given a stream without tracks holds up the page's
  // load event for good (Chromium): a picture only once there is a camera.
  if (ui.stream.getVideoTracks().length > 0) self.video.srcObject = ui.stream;
  self.tile.classList.add('self');
  grid.append(self.tile);
  const ownVoice = voiceFeedback(() => meeting.audioMuted,
    (on) => self.tile.classList.toggle('voice', on), (on) => {
      if (on && $('muted-hint').hidden) announce(S().mutedTalking);
      $('muted-hint').hidden = !on;
    });
  // Out of the meeting: the microphone is no longer listened to.
  meeting.addEventListener('state', (ev) => {
    const { state } = /** @type {CustomEvent} */ (ev).detail;
    if (state === 'left' || state === 'failed') ownVoice(undefined);
  });
  ui.renderSelf = () => {
    if (meeting.audioMuted) self.tile.classList.remove('voice');
    else $('muted-hint').hidden = true;
    ownVoice(meeting.stream.getAudioTracks()[0]);
    updateTile(self, `${name ?? S().guest} (${S().you})`, meeting.audioMuted, meeting.videoMuted, meeting.handRaised);
    setToggle($('mic'), !meeting.audioMuted, ['mic', S().micOn], ['micOff', S().micOff]);
    setToggle($('cam'), !meeting.videoMuted, ['cam', S().camOn], ['camOff', S().camOff]);
    setIconLabel($('hand'), 'hand', meeting.handRaised ? S().lowerHand : S().raiseHand);
    $('hand').setAttribute('aria-pressed', String(meeting.handRaised));
    setToggle($('share'), meeting.screenSharing, ['stopShare', S().stopShare], ['share', S().shareScreen]);
    $('share').classList.remove('off');
  };
  ui.renderSelf();

  // One's own picture: in the grid, or (as the user prefers, and only with
  // someone else to look at) small in a corner, where it can be dragged.
  const body = /** @type {HTMLElement} */ ($('meeting').querySelector('.body'));
  let selfFloat = loadSetting(SELF_VIEW_KEY) === 'float';
  ui.placeSelf = () => {
    const floating = selfFloat && grid.children.length > (self.tile.parentElement === grid ? 1 : 0);
    self.tile.classList.toggle('floating', floating);
    if (floating && self.tile.parentElement !== body) body.append(self.tile);
    if (!floating && self.tile.parentElement !== grid) {
      self.tile.style.left = '';
      self.tile.style.top = '';
      grid.prepend(self.tile);
    }
    setIconLabel($('selfview-btn'), 'selfView', S().selfViewFloat);
    $('selfview-btn').setAttribute('aria-pressed', String(selfFloat));
    ui.layout();
  };
  $('selfview-btn').onclick = () => {
    selfFloat = !selfFloat;
    saveSetting(SELF_VIEW_KEY, selfFloat ? 'float' : 'grid');
    ui.placeSelf();
  };
  dragWithin(self.tile, body);
  ui.onLanguage(ui.placeSelf);
}

/**
 * Lets the user drag `el` (while it has the class `floating`) anywhere
 * inside `area`, with mouse, pen or finger.
 * @param {HTMLElement} el @param {HTMLElement} area
 */
function dragWithin(el, area) {
  /** @type {{dx: number, dy: number}|null} */
  let grab = null;
  el.addEventListener('pointerdown', (e) => {
    if (!el.classList.contains('floating') || e.button !== 0) return;
    const r = el.getBoundingClientRect();
    grab = { dx: e.clientX - r.left, dy: e.clientY - r.top };
    el.setPointerCapture(e.pointerId);
    el.classList.add('dragging');
  });
  el.addEventListener('pointermove', (e) => {
    if (!grab) return;
    const a = area.getBoundingClientRect();
    const x = Math.max(0, Math.min(e.clientX - grab.dx - a.left, a.width - el.offsetWidth));
    const y = Math.max(0, Math.min(e.clientY - grab.dy - a.top, a.height - el.offsetHeight));
    el.style.left = `${x}px`;
    el.style.top = `${y}px`;
    el.style.right = 'auto';
    el.style.bottom = 'auto';
  });
  const drop = () => { grab = null; el.classList.remove('dragging'); };
  el.addEventListener('pointerup', drop);
  el.addEventListener('pointercancel', drop);
}
