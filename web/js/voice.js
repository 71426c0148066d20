// One's own voice, measured in the page (nothing of it sent): whether one
// is talking, and whether one talks while muted. No DOM here.

/**
 * Listens to one's own microphone here — a copy of the track, measured in
 * the page, nothing of it sent — five times a second, muted or not, and
 * calls `onSample(voice)`: whether that moment sounded like a voice (null
 * once it stops listening). Call the result with the microphone's track,
 * or none to stop.
 * @param {(voice: boolean|null) => void} onSample
 */
function micMeter(onSample) {
  /** @type {{ctx: AudioContext, track: MediaStreamTrack, probe: MediaStreamTrack, timer: ReturnType<typeof setInterval>}|null} */
  let on = null;
  const stop = () => {
    if (on) { clearInterval(on.timer); on.probe.stop(); void on.ctx.close(); on = null; }
  };
  return (/** @type {MediaStreamTrack|undefined} */ track) => {
    if (on && on.track === track) return;
    stop();
    if (!track || track.readyState !== 'live' || typeof AudioContext === 'undefined') { onSample(null); return; }
    const ctx = new AudioContext();
    const probe = track.clone();
    probe.enabled = true;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    ctx.createMediaStreamSource(new MediaStream([probe])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      // The microphone was let go (left, or the meeting ended): so is the copy.
      if (track.readyState !== 'live') { stop(); onSample(null); return; }
      // A page not yet clicked may not run audio; the next try after a click can.
      if (ctx.state === 'suspended') void ctx.resume();
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      // Above -40 dBFS (RMS) counts as voice; a room's hum stays below.
      onSample(Math.sqrt(sum / samples.length) > 0.01);
    }, 200);
    // Started on joining or on a mute click or key (a user gesture), so it may run.
    void ctx.resume();
    on = { ctx, track, probe, timer };
  };
}

/**
 * What one's own voice shows: unmuted, one's tile lights up while one
 * talks (at once, off after a second of quiet); muted, about a second of
 * voice shows "you are muted" (`hint(true)`), four quiet seconds or
 * unmuting hide it.
 * @param {() => boolean} muted @param {(on: boolean) => void} talking @param {(on: boolean) => void} hint
 */
export function voiceFeedback(muted, talking, hint) {
  let loud = 0;
  let quiet = 0;
  return micMeter((voice) => {
    loud = voice ? loud + 1 : 0;
    quiet = voice ? 0 : quiet + 1;
    if (voice === null) {
      talking(false);
      hint(false);
    } else if (muted()) {
      talking(false);
      if (loud >= 5) hint(true);
      else if (quiet >= 20) hint(false);
    } else {
      hint(false);
      if (loud >= 1) talking(true);
      else if (quiet >= 5) talking(false);
    }
  });
}
