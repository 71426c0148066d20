// A microphone the test can make speak (Chromium; Firefox keeps an
// AudioContext suspended until a real click, and its own fake microphone
// is a steady tone anyway).

/**
 * Replaces the microphone with a 440 Hz tone behind a gain the test sets
 * with `window.__tone(true|false)` (silent at first). Runs in the page
 * before its scripts.
 */
export function toneMicrophone() {
  // Also runs in Firefox's blank COOP document, which has no devices.
  if (!navigator.mediaDevices) return;
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  const audio = new AudioContext();
  const osc = audio.createOscillator();
  osc.frequency.value = 440;
  const gain = audio.createGain();
  gain.gain.value = 0;
  const out = audio.createMediaStreamDestination();
  osc.connect(gain).connect(out);
  osc.start();
  /** @type {any} */ (window).__tone = (/** @type {boolean} */ on) => {
    void audio.resume();
    gain.gain.value = on ? 0.5 : 0;
  };
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const got = await real(constraints);
    if (!constraints?.audio) return got;
    void audio.resume();
    for (const t of got.getAudioTracks()) { got.removeTrack(t); t.stop(); }
    got.addTrack(out.stream.getAudioTracks()[0].clone());
    return got;
  };
}
