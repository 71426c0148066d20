// One participant's tile: picture, initial, name, and the marks on it
// (muted, hand, end-to-end trust, connection quality, paused video).
// Names are only ever set as text.

import { S } from '../i18n.js';
import { icon } from '../icons.js';
import { trustMark } from './verify.js';

/** @typedef {ReturnType<typeof makeTile>} Tile */

/**
 * A participant's tile. Names are set with textContent only.
 * @param {string} key
 */
export function makeTile(key) {
  const tile = document.createElement('div');
  tile.className = 'tile';
  tile.dataset.participant = key;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  // A picture, not a control: Firefox would make it a Tab stop.
  video.tabIndex = -1;
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  const label = document.createElement('div');
  label.className = 'label';
  const name = document.createElement('span');
  name.className = 'name';
  const muted = document.createElement('span');
  muted.className = 'muted-icon';
  const hand = document.createElement('span');
  hand.className = 'hand-icon';
  // End-to-end: no key, verified, or keys that differ (verify.js).
  const trust = document.createElement('span');
  trust.className = 'trust-icon';
  // How well this participant's media reaches us (one's own: reaches the
  // server), from the browser's statistics; set by `setQuality`.
  const quality = document.createElement('span');
  quality.className = 'quality';
  quality.setAttribute('role', 'img');
  quality.hidden = true;
  quality.append(icon('signal'));
  label.append(quality, name, muted, hand, trust);
  // Shown while the server pauses this video for want of bandwidth.
  const paused = document.createElement('div');
  paused.className = 'paused-note';
  paused.setAttribute('role', 'status');
  tile.append(video, avatar, paused, label);
  /** @type {string|null} the m-line its video arrives on */
  const mid = null;
  return { tile, video, name, avatar, muted, hand, trust, paused, quality, mid, stream: new MediaStream() };
}

/**
 * A connection's quality from what it lost (a share, 0–1) and how late
 * its packets are (jitter or half the round trip, seconds).
 * @param {number} loss @param {number} delay
 * @returns {'good'|'fair'|'poor'}
 */
export function qualityOf(loss, delay) {
  if (loss >= 0.08 || delay >= 0.4) return 'poor';
  if (loss >= 0.02 || delay >= 0.15) return 'fair';
  return 'good';
}

const QUALITY_TEXT = /** @type {const} */ ({ good: 'connectionGood', fair: 'connectionFair', poor: 'connectionPoor' });

/**
 * Shows a connection quality on a tile (or none yet).
 * @param {Tile} t @param {'good'|'fair'|'poor'|undefined} level
 */
export function setQuality(t, level) {
  t.quality.hidden = !level;
  if (!level) return;
  t.quality.dataset.level = level;
  t.quality.setAttribute('aria-label', S()[QUALITY_TEXT[level]]);
  t.quality.title = S()[QUALITY_TEXT[level]];
}

/**
 * @param {Tile} t
 * @param {string} displayName @param {boolean} audioMuted @param {boolean} videoMuted @param {boolean} hand
 */
export function updateTile(t, displayName, audioMuted, videoMuted, hand) {
  t.name.textContent = displayName;
  t.avatar.textContent = (displayName.trim()[0] ?? '?').toUpperCase();
  t.muted.textContent = S().mutedLabel;
  t.hand.textContent = S().handRaised;
  t.tile.classList.toggle('audio-off', audioMuted);
  t.tile.classList.toggle('video-off', videoMuted);
  t.tile.classList.toggle('hand-up', hand);
}

/**
 * Shows on a tile what we know of a participant's keys (verify.js).
 * @param {Tile} t @param {ReturnType<typeof import('./verify.js').trustOf>} trust
 */
export function setTrust(t, trust) {
  const mark = trustMark(trust);
  for (const cls of ['unverified', 'verified', 'suspect']) t.tile.classList.toggle(cls, mark?.cls === cls);
  t.trust.textContent = mark?.text ?? '';
  t.trust.title = mark?.title ?? '';
}
