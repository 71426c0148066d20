// The others' tiles: one per participant, kept as the participant list
// changes, with their names, marks, trust and speaking outline; the
// tracks that arrive go into them, a shared screen into a tile of its own.

import { S } from '../i18n.js';
import { $, play } from './dom.js';
import { makeTile, setTrust, updateTile } from './tile.js';
import { trustOf, wireSafetyCode } from './verify.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/**
 * @param {MeetingUi} ui
 */
export function wireTiles(ui) {
  const { meeting, grid, tiles, screens, self } = ui;
  /** @param {number} id */
  const tileFor = (id) => {
    let t = tiles.get(id);
    if (!t) {
      t = makeTile(String(id));
      t.tile.classList.toggle('speaking', id === meeting.speaker);
      tiles.set(id, t);
      grid.append(t.tile);
      ui.layout();
    }
    return t;
  };
  ui.renderCount = () => { $('count').textContent = S().participantsCount(tiles.size + 1); };
  const renderTrust = () => {
    for (const [id, t] of tiles) setTrust(t, trustOf(meeting, id));
  };
  ui.onLanguage(wireSafetyCode(meeting, renderTrust));

  meeting.addEventListener('participants', (ev) => {
    const ps = /** @type {CustomEvent} */ (ev).detail.participants;
    for (const [id, t] of tiles) {
      if (!ps.has(id)) { t.tile.remove(); tiles.delete(id); }
    }
    for (const p of ps.values()) {
      updateTile(tileFor(p.id), p.name ?? S().guest, p.audio_muted, p.video_muted, p.hand_raised);
      setTrust(tileFor(p.id), trustOf(meeting, p.id));
    }
    ui.placeSelf();
    ui.renderCount();
  });
  ui.onLanguage(ui.renderCount);
  // The speaker's tile is outlined, one's own included; in stage view it
  // takes the stage.
  meeting.addEventListener('speaker', () => {
    for (const [id, t] of tiles) t.tile.classList.toggle('speaking', id === meeting.speaker);
    self.tile.classList.toggle('speaking', meeting.speaker !== null && meeting.speaker === meeting.you);
    ui.renderStage();
  });
  // A video the server pauses for want of bandwidth says so on its tile
  // (its last frame stays, dimmed), until the server sends it again.
  const markPaused = () => {
    for (const t of [...tiles.values(), ...screens.values()]) {
      const paused = t.mid !== null && meeting.paused.has(t.mid);
      t.tile.classList.toggle('bandwidth-paused', paused);
      t.paused.textContent = paused ? S().videoPaused : '';
    }
  };
  meeting.addEventListener('paused', markPaused);
  ui.onLanguage(markPaused);
  meeting.addEventListener('participants', (ev) => {
    const ps = /** @type {CustomEvent} */ (ev).detail.participants;
    for (const id of [...screens.keys()]) {
      if (!ps.get(id)?.screen_sharing) { screens.get(id)?.tile.remove(); screens.delete(id); }
    }
    // Someone came or went: the stage may have (or lose) its speaker.
    ui.renderStage();
  });

  meeting.addEventListener('track', (ev) => {
    const { participant, kind, track, screen, mid } = /** @type {CustomEvent} */ (ev).detail;
    const t = screen ? screenTile(ui, participant) : tileFor(participant);
    const kept = kind === 'audio' ? t.stream.getAudioTracks() : t.stream.getVideoTracks();
    for (const old of kept) t.stream.removeTrack(old);
    t.stream.addTrack(track);
    if (!t.video.srcObject) t.video.srcObject = t.stream;
    if (kind === 'video') t.mid = mid;
    markPaused();
    ui.watch(t.video);
    if (screen) ui.renderStage();
    play(t.video);
    ui.reportView();
  });
}

/**
 * The tile of `participant`'s shared screen (made on its first track).
 * @param {MeetingUi} ui @param {number} participant
 */
function screenTile(ui, participant) {
  let st = ui.screens.get(participant);
  if (!st) {
    st = makeTile(`screen-${participant}`);
    st.tile.classList.add('screen-tile');
    st.video.muted = true;
    st.video.srcObject = st.stream;
    ui.screens.set(participant, st);
  }
  return st;
}
