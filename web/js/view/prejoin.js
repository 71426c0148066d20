// The prejoin screen: one's name, camera and microphone (on, off, which
// device) with a preview, a note if the meeting is streamed live; Join
// hands them to the meeting (app.js). A site embedding the meeting may
// join for the user (embed.js).

import { S } from '../i18n.js';
import { streamLive } from '../api.js';
import { acquire } from '../devices.js';
import { embedPrejoin } from '../embed.js';
import { saveSetting } from '../storage.js';
import { $, setToggle, show } from './dom.js';

/** Where the name one joined with last is kept (on this device only). */
export const NAME_KEY = 'aconfi.name';

/**
 * The prejoin screen, filled in from the link's fragment (name, mic and
 * camera off; with `autojoin`, Join has the focus).
 * @param {string} room @param {string|undefined} name @param {ReturnType<typeof import('../protocol.js').parseFragment>} frag
 * @param {boolean} encrypted the link carries an end-to-end key
 * @param {(name: string|undefined, stream: MediaStream, audioMuted: boolean, videoMuted: boolean) => void} join
 *   called once, when the user joins
 */
export async function prejoin(room, name, frag, encrypted, join) {
  show('prejoin');
  $('prejoin-e2ee').hidden = !encrypted;
  // People about to join are told if the meeting is being streamed live
  // (unknown: nothing is said).
  streamLive(room).then((live) => { if (live !== null) $('prejoin-live').hidden = !live; });
  const nameInput = $('name-input');
  nameInput.value = name ?? '';
  // Joining waits until the camera and microphone are asked for (a click
  // before that would have nothing to send, and be lost).
  const joinNow = /** @type {HTMLButtonElement} */ ($('join-now'));
  joinNow.disabled = true;
  let micOn = !frag.micOff;
  let camOn = !frag.cameraOff;
  // Only what is on is opened: a link saying mic=off or camera=off does
  // not even ask for that device until it is switched on here.
  let stream = micOn || camOn ? await acquire(micOn, camOn) : new MediaStream();
  const preview = $('preview');
  // A video given a stream without video never loads (and holds up the
  // page's load event): only a camera's stream goes in.
  const showPreview = () => { preview.srcObject = stream.getVideoTracks().length > 0 ? stream : null; };
  showPreview();
  $('device-error').textContent = S().noDevices;
  // Nothing came of what was asked for (nothing asked: nothing to say).
  $('device-error').hidden = stream.getTracks().length > 0 || (!micOn && !camOn);

  const camSel = $('camera-select');
  const micSel = $('mic-select');
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const d of devices) {
    const opt = document.createElement('option');
    opt.value = d.deviceId;
    opt.textContent = d.label || d.kind;
    if (d.kind === 'videoinput') camSel.append(opt);
    if (d.kind === 'audioinput') micSel.append(opt);
  }
  const current = (/** @type {'audio'|'video'} */ kind) =>
    (kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks())[0]?.getSettings().deviceId;
  camSel.value = current('video') ?? camSel.value;
  micSel.value = current('audio') ?? micSel.value;

  const render = () => {
    setToggle($('pre-mic'), micOn, ['mic', S().micOn], ['micOff', S().micOff]);
    setToggle($('pre-cam'), camOn, ['cam', S().camOn], ['camOff', S().camOff]);
  };
  render();
  /** @param {'audio'|'video'} kind @param {string} deviceId */
  const swap = async (kind, deviceId) => {
    const fresh = await acquire(kind === 'audio', kind === 'video',
      kind === 'audio' ? { audioId: deviceId } : { videoId: deviceId });
    const old = kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks();
    for (const t of old) { t.stop(); stream.removeTrack(t); }
    for (const t of fresh.getTracks()) stream.addTrack(t);
    for (const t of stream.getAudioTracks()) t.enabled = micOn;
    showPreview();
  };
  camSel.onchange = () => { if (camOn) swap('video', camSel.value); };
  micSel.onchange = () => swap('audio', micSel.value);
  $('pre-mic').onclick = async () => {
    micOn = !micOn;
    if (micOn && stream.getAudioTracks().length === 0) await swap('audio', micSel.value);
    for (const t of stream.getAudioTracks()) t.enabled = micOn;
    render();
  };
  $('pre-cam').onclick = async () => {
    camOn = !camOn;
    if (camOn) await swap('video', camSel.value);
    else for (const t of stream.getVideoTracks()) { t.stop(); stream.removeTrack(t); }
    showPreview();
    render();
  };
  joinNow.onclick = () => {
    const n = String(nameInput.value).trim();
    saveSetting(NAME_KEY, n || null);
    preview.srcObject = null;
    join(n || undefined, stream, !micOn || stream.getAudioTracks().length === 0,
      !camOn || stream.getVideoTracks().length === 0);
  };
  joinNow.disabled = false;
  // A site embedding the meeting may join for the user (embed.js).
  embedPrejoin((o) => {
    if (o.name !== undefined) nameInput.value = o.name;
    if (o.mic === false) micOn = false;
    if (o.camera === false) camOn = false;
    joinNow.click();
  });
  // From the keyboard: the name field has focus, Enter joins. A link that
  // asked to join at once (`#autojoin=1`) gets the one click it needs.
  nameInput.onkeydown = (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Enter') joinNow.click(); };
  if (frag.autojoin) joinNow.focus();
  else nameInput.focus();
}
