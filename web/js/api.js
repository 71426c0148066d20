// What the page asks the server over HTTP besides the meeting itself
// (which goes through Meeting, meeting.js): docs/protocol.md, "HTTP".
// No DOM here.

/**
 * Whether `room` is being streamed live right now, for people about to
 * join; null when the server could not be asked.
 * @param {string} room
 * @returns {Promise<boolean|null>}
 */
export async function streamLive(room) {
  try {
    const r = await fetch(`/api/stream/${encodeURIComponent(room)}`, { cache: 'no-store' });
    if (!r.ok) return false;
    return (await r.json()).live === true;
  } catch {
    return null;
  }
}
