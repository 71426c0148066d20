// The camera and microphone: asked for with what the user chose, falling
// back to whatever works. No DOM here.

/**
 * Gets camera and/or microphone, falling back to whatever works (both,
 * then the microphone alone, then the camera alone; else an empty stream).
 * @param {boolean} audio @param {boolean} video
 * @param {{audioId?: string, videoId?: string}} [ids]
 * @returns {Promise<MediaStream>}
 */
export async function acquire(audio, video, ids = {}) {
  const v = { width: { ideal: 1280 }, height: { ideal: 720 }, ...(ids.videoId ? { deviceId: { exact: ids.videoId } } : {}) };
  const a = ids.audioId ? { deviceId: { exact: ids.audioId } } : true;
  const tries = [[audio, video], [audio, false], [false, video]];
  for (const [wa, wv] of tries) {
    if (!wa && !wv) continue;
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: wa ? a : false, video: wv ? v : false });
    } catch { /* try the next combination */ }
  }
  return new MediaStream();
}
