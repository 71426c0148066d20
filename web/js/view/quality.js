// Each tile's connection quality, every two seconds: for the others, the
// packets of theirs lost on the way to us (and their jitter) since the
// last look; for oneself, what the server reports losing of ours (and the
// round trip).

import { qualityOf, setQuality } from './tile.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/** @param {MeetingUi} ui */
export function wireQuality(ui) {
  const { meeting, tiles, self } = ui;
  /** @type {Map<number, {received: number, lost: number}>} */
  const counted = new Map();
  const timer = setInterval(async () => {
    if (meeting.state !== 'joined') return;
    const [got, up] = await Promise.all([meeting.statsByParticipant(), meeting.uplinkStats()]);
    for (const [id, t] of tiles) {
      const s = got[id];
      if (!s) continue;
      const before = counted.get(id);
      counted.set(id, { received: s.packetsReceived, lost: s.packetsLost });
      const received = s.packetsReceived - (before?.received ?? 0);
      const lost = s.packetsLost - (before?.lost ?? 0);
      // Nothing new (or counters restarted with a new connection): no news.
      if (!before || received < 0 || lost < 0 || received + lost === 0) continue;
      setQuality(t, qualityOf(lost / (received + lost), s.jitter));
    }
    for (const id of counted.keys()) if (!tiles.has(id)) counted.delete(id);
    setQuality(self, qualityOf(up.fractionLost, (up.rtt ?? 0) / 2));
  }, 2000);
  meeting.addEventListener('state', (ev) => {
    const { state } = /** @type {CustomEvent} */ (ev).detail;
    if (state === 'left' || state === 'failed') clearInterval(timer);
  });
  ui.onLanguage(() => {
    for (const t of [self, ...tiles.values()]) setQuality(t, t.quality.hidden ? undefined : /** @type {any} */ (t.quality.dataset.level));
  });
}
