// The camera and microphone: asked for with what the user chose, at the
// size the operator set (--camera-height), falling back to whatever works.
// No DOM here.

import { settings } from './settings.js';

/**
 * Gets camera and/or microphone, falling back to whatever works (both,
 * then the microphone alone, then the camera alone; else an empty stream).
 * @param {boolean} audio @param {boolean} video
 * @param {{audioId?: string, videoId?: string}} [ids]
 * @returns {Promise<MediaStream>}
 */
export async function acquire(audio, video, ids = {}) {
  const height = settings().cameraHeight;
  const v = { width: { ideal: Math.round((height * 16) / 9) }, height: { ideal: height }, ...(ids.videoId ? { deviceId: { exact: ids.videoId } } : {}) };
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
