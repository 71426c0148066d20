// The user interface: landing page, prejoin screen, meeting view.
// Talks to the server only through Meeting (meeting.js).

import { S, lang, setLang } from './i18n.js';
import { Meeting } from './meeting.js';
import { appendChat, confirmAction, nameOf, RECIPIENT_GONE, renderPeople, toast, wireSettings } from './panel.js';
import { CloseCode, E2EE_WRONG_KEY, normaliseRoomName, parseFragment } from './protocol.js';
import { newSecret, secretFromFragment } from './e2ee/link.js';
import { frameApi } from './frames.js';
import { wireLiveStream } from './live.js';
import { trustMark, trustOf, wireSafetyCode } from './verify.js';
import { decorate, icon, setIconLabel } from './icons.js';
import { MIN_THUMB, MIN_TILE, arrange, perPage } from './layout.js';
import { embedMeeting, embedPrejoin, isFramed } from './embed.js';
import { loadSetting, saveSetting } from './storage.js';

const NAME_KEY = 'aconfi.name';
/** Where one's own picture goes: 'grid' (the default) or 'float'. */
const SELF_VIEW_KEY = 'aconfi.selfView';
/**
 * The end-to-end key of this meeting's link, if it has one: its bytes and
 * its text as in the link (kept for "copy link" and "rejoin"; never stored).
 * @type {{secret: Uint8Array, text: string}|null}
 */
let meetingKey = null;
/** @type {Array<() => void>} re-render hooks for a language switch */
const rerender = [];

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

/** @param {string} id */
function show(id) {
  for (const v of document.querySelectorAll('.view')) /** @type {HTMLElement} */ (v).hidden = v.id !== id;
}

function applyStrings() {
  document.documentElement.lang = lang();
  for (const el of document.querySelectorAll('[data-s]')) {
    const v = /** @type {any} */ (S())[/** @type {HTMLElement} */ (el).dataset.s ?? ''];
    if (typeof v === 'string') el.textContent = v;
  }
  for (const el of document.querySelectorAll('[data-ph]')) {
    const v = /** @type {any} */ (S())[/** @type {HTMLElement} */ (el).dataset.ph ?? ''];
    if (typeof v === 'string') /** @type {HTMLInputElement} */ (el).placeholder = v;
  }
  for (const el of document.querySelectorAll('[data-s-label]')) {
    const v = /** @type {any} */ (S())[/** @type {HTMLElement} */ (el).dataset.sLabel ?? ''];
    if (typeof v === 'string') el.setAttribute('aria-label', v);
  }
  // Icon buttons with a fixed label: the label is the tooltip too.
  for (const el of document.querySelectorAll('[data-icon]')) {
    const label = el.querySelector(':scope > .label[data-s]');
    if (label) setIconLabel(/** @type {HTMLElement} */ (el), /** @type {any} */ (el).dataset.icon, label.textContent ?? '');
  }
  for (const sel of document.querySelectorAll('.lang-select')) /** @type {HTMLSelectElement} */ (sel).value = lang();
  for (const f of rerender) f();
}

function main() {
  decorate(document);
  for (const sel of document.querySelectorAll('.lang-select')) {
    sel.addEventListener('change', () => { setLang(/** @type {HTMLSelectElement} */ (sel).value); applyStrings(); });
  }
  applyStrings();
  const path = decodeURIComponent(location.pathname.replace(/^\/+/, ''));
  if (!path) return landing();
  const room = normaliseRoomName(path);
  if (!room) return ended(S().failedTitle, S().invalidRoom, false);
  const key = secretFromFragment(location.hash);
  if (key === 'invalid') return ended(S().failedTitle, S().e2eeBadLink, false);
  if (key && !frameApi()) return ended(S().failedTitle, S().e2eeUnsupported, false);
  meetingKey = key;
  const frag = parseFragment(location.hash);
  const name = frag.name ?? loadSetting(NAME_KEY) ?? undefined;
  // `#autojoin=1` joins by itself only inside a frame, which only a site
  // the operator allowed (--frame-ancestors) can make: anywhere else a
  // link must not put someone's camera and microphone into a stranger's
  // meeting without a click. There it fills in the prejoin screen.
  if (frag.autojoin && isFramed()) {
    acquire(!frag.micOff, !frag.cameraOff).then((stream) =>
      joinMeeting(room, name, stream, frag.micOff || stream.getAudioTracks().length === 0,
        frag.cameraOff || stream.getVideoTracks().length === 0));
  } else {
    prejoin(room, name, frag);
  }
}

function landing() {
  show('landing');
  // End-to-end encryption is the default where the browser can do it; the
  // secret goes into the fragment, which survives the redirect to the
  // meeting's name and never reaches the server.
  const e2ee = $('e2ee-start');
  e2ee.disabled = !frameApi();
  e2ee.checked = !e2ee.disabled;
  $('start').onclick = () => { location.href = e2ee.checked ? `/new#key=${newSecret()}` : '/new'; };
  $('join-form').onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const raw = String($('room-input').value).trim();
    // Accept a pasted link as well as a bare name; a link keeps its
    // fragment (the end-to-end key).
    const [base, ...rest] = raw.split('#');
    const hash = rest.length > 0 ? `#${rest.join('#')}` : '';
    const last = base.split('?')[0].split('/').filter(Boolean).pop() ?? '';
    const room = normaliseRoomName(base.includes('/') ? last : base);
    if (!room) {
      $('room-error').textContent = S().invalidRoom;
      $('room-error').hidden = false;
      return;
    }
    location.href = `/${room}${hash}`;
  };
}

/**
 * Gets camera and/or microphone, falling back to whatever works.
 * @param {boolean} audio @param {boolean} video
 * @param {{audioId?: string, videoId?: string}} [ids]
 * @returns {Promise<MediaStream>}
 */
async function acquire(audio, video, ids = {}) {
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

/**
 * The prejoin screen, filled in from the link's fragment (name, mic and
 * camera off; with `autojoin`, Join has the focus).
 * @param {string} room @param {string|undefined} name @param {ReturnType<typeof parseFragment>} [frag]
 */
async function prejoin(room, name, frag = parseFragment('')) {
  show('prejoin');
  $('prejoin-e2ee').hidden = !meetingKey;
  // People about to join are told if the meeting is being streamed live.
  fetch(`/api/stream/${encodeURIComponent(room)}`, { cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : { live: false }))
    .then((j) => { $('prejoin-live').hidden = j.live !== true; })
    .catch(() => { /* unknown: say nothing */ });
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
    joinMeeting(room, n || undefined, stream, !micOn || stream.getAudioTracks().length === 0,
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

/**
 * The meeting's keyboard shortcuts: key → the toolbar button it presses.
 * The buttons say theirs in `aria-keyshortcuts`.
 */
const SHORTCUTS = /** @type {const} */ ([
  ['m', 'mic', 'shortcutMic'], ['v', 'cam', 'shortcutCam'], ['s', 'share', 'shortcutShare'],
  ['c', 'side-btn', 'shortcutChat'], ['r', 'hand', 'shortcutHand'], ['?', null, 'shortcutHelp'],
]);

/**
 * Whether a key press goes to something the user types into (then it is
 * theirs, not a shortcut).
 * @param {EventTarget|null} target
 */
function typingInto(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !['button', 'checkbox', 'radio', 'submit', 'reset'].includes(target.type);
}

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
function voiceFeedback(muted, talking, hint) {
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

/** Fills the shortcut list in the current language and shows it. */
function showShortcuts() {
  const list = $('shortcuts-list');
  list.replaceChildren();
  for (const [key, , label] of SHORTCUTS) {
    const dt = document.createElement('dt');
    const kbd = document.createElement('kbd');
    kbd.textContent = key.toUpperCase();
    dt.append(kbd);
    const dd = document.createElement('dd');
    dd.textContent = S()[label];
    list.append(dt, dd);
  }
  const dialog = /** @type {HTMLDialogElement} */ ($('shortcuts-dialog'));
  if (!dialog.open) dialog.showModal();
}

/**
 * Presses the toolbar button of a shortcut key, while the meeting is on
 * screen, no dialog is open and the key is not typed into a field.
 * @param {KeyboardEvent} e
 */
function onShortcut(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || e.defaultPrevented || typingInto(e.target)) return;
  if ($('meeting').hidden || document.querySelector('dialog[open]')) return;
  const hit = SHORTCUTS.find(([key]) => key === e.key.toLowerCase());
  if (!hit) return;
  e.preventDefault();
  const [, id] = hit;
  if (id === null) { showShortcuts(); return; }
  const button = /** @type {HTMLButtonElement} */ ($(id));
  if (button.hidden || button.disabled) return;
  button.click();
}

/**
 * An on/off button: its icon and label say the state.
 * @param {HTMLElement} el @param {boolean} on
 * @param {[import('./icons.js').IconName, string]} onLook @param {[import('./icons.js').IconName, string]} offLook
 */
function setToggle(el, on, onLook, offLook) {
  const [name, label] = on ? onLook : offLook;
  setIconLabel(el, name, label);
  el.setAttribute('aria-pressed', String(on));
  el.classList.toggle('off', !on);
}

/**
 * A participant's tile. Names are set with textContent only.
 * @param {string} key
 */
function makeTile(key) {
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
function qualityOf(loss, delay) {
  if (loss >= 0.08 || delay >= 0.4) return 'poor';
  if (loss >= 0.02 || delay >= 0.15) return 'fair';
  return 'good';
}

const QUALITY_TEXT = /** @type {const} */ ({ good: 'connectionGood', fair: 'connectionFair', poor: 'connectionPoor' });

/**
 * Shows a connection quality on a tile (or none yet).
 * @param {ReturnType<typeof makeTile>} t @param {'good'|'fair'|'poor'|undefined} level
 */
function setQuality(t, level) {
  t.quality.hidden = !level;
  if (!level) return;
  t.quality.dataset.level = level;
  t.quality.setAttribute('aria-label', S()[QUALITY_TEXT[level]]);
  t.quality.title = S()[QUALITY_TEXT[level]];
}

/**
 * @param {ReturnType<typeof makeTile>} t
 * @param {string} displayName @param {boolean} audioMuted @param {boolean} videoMuted @param {boolean} hand
 */
function updateTile(t, displayName, audioMuted, videoMuted, hand) {
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
 * @param {ReturnType<typeof makeTile>} t @param {ReturnType<typeof trustOf>} trust
 */
function setTrust(t, trust) {
  const mark = trustMark(trust);
  for (const cls of ['unverified', 'verified', 'suspect']) t.tile.classList.toggle(cls, mark?.cls === cls);
  t.trust.textContent = mark?.text ?? '';
  t.trust.title = mark?.title ?? '';
}

/** A localised reason for a close code, if we have one. @param {number|undefined} code */
function closeText(code) {
  switch (code) {
    case CloseCode.REMOVED: return S().removedText;
    case CloseCode.LOCKED: return S().lockedText;
    case CloseCode.ENDED: return S().endedText;
    case CloseCode.LOBBY_REFUSED: return S().lobbyRefusedText;
    case CloseCode.ROOM_FULL: return S().roomFullText;
    case CloseCode.INVALID_ROOM_NAME: return S().invalidRoom;
    case CloseCode.UNSUPPORTED_VERSION: return S().versionText;
    case CloseCode.E2EE_REQUIRED: return S().e2eeNeedsLink;
    case CloseCode.NOT_E2EE: return S().e2eeNotEncrypted;
    case E2EE_WRONG_KEY: return S().e2eeWrongKey;
    default: return undefined;
  }
}

/** The page of the grid on screen (0-based). */
let gridPage = 0;

/**
 * Sizes the tiles and pages them: as many per page as fit at a useful
 * size, the others hidden (and so not sent: the server is told what is on
 * screen), with the pager shown when there is more than one page.
 * @param {HTMLElement} grid
 */
function layoutGrid(grid) {
  const all = /** @type {HTMLElement[]} */ ([...grid.children]);
  const gap = 8;
  const W = grid.clientWidth - gap * 2;
  const H = grid.clientHeight - gap * 2;
  if (W <= 0 || H <= 0) return;
  const n = Math.max(1, all.length);
  // Beside a stage the grid is a strip of thumbnails, smaller ones.
  const staged = grid.parentElement?.classList.contains('staged');
  const onePage = perPage(n, W, H, gap, staged ? MIN_THUMB : MIN_TILE);
  const pages = Math.ceil(n / onePage);
  gridPage = Math.max(0, Math.min(gridPage, pages - 1));
  all.forEach((t, i) => { t.hidden = Math.floor(i / onePage) !== gridPage; });
  const best = arrange(Math.min(onePage, n - gridPage * onePage), W, H, gap);
  grid.style.setProperty('--cols', String(best.cols));
  grid.style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
  grid.style.setProperty('--tile-h', `${Math.floor(best.h)}px`);
  $('pager').hidden = pages < 2;
  // A live region: said when it changes, not on every layout.
  const pageText = S().pageOf(gridPage + 1, pages);
  if ($('page-info').textContent !== pageText) $('page-info').textContent = pageText;
  $('page-prev').disabled = gridPage === 0;
  $('page-next').disabled = gridPage >= pages - 1;
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

/**
 * The "more" menu of the toolbar: a button that shows or hides a list of
 * the less-used actions. Choosing one, Escape, or a click elsewhere
 * closes it; opened from the keyboard, the focus goes to its first item.
 */
function wireMoreMenu() {
  const menu = $('more-menu');
  const button = $('more-btn');
  /** @param {boolean} open @param {boolean} [focus] */
  const setOpen = (open, focus = false) => {
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open && focus) /** @type {HTMLElement|null} */ (menu.querySelector('button:not([hidden]), select'))?.focus();
  };
  button.onclick = (/** @type {MouseEvent} */ e) => setOpen(menu.hidden, e.detail === 0);
  menu.addEventListener('click', (/** @type {MouseEvent} */ e) => {
    if (e.target instanceof Element && e.target.closest('button')) setOpen(false);
  });
  menu.parentElement.addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    if (e.key === 'Escape' && !menu.hidden) { e.preventDefault(); setOpen(false); button.focus(); }
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !(e.target instanceof Element && e.target.closest('.more'))) setOpen(false);
  });
}

/**
 * Says `text` to screen-reader users through the meeting's one live region
 * (the banner and the muted hint are shown to sighted users and announced
 * here).
 * @param {string} text
 */
function announce(text) {
  const region = $('announcer');
  // The same words again are a new announcement only after a change.
  region.textContent = '';
  requestAnimationFrame(() => { region.textContent = text; });
}

/** @param {HTMLVideoElement} video */
function play(video) {
  video.play().catch(() => {
    // Autoplay with sound needs a gesture: show the picture now, sound on first click.
    video.muted = true;
    video.play().catch(() => {});
    document.addEventListener('click', () => { video.muted = false; }, { once: true });
  });
}

/**
 * @param {string} room @param {string|undefined} name @param {MediaStream} stream
 * @param {boolean} audioMuted @param {boolean} videoMuted
 */
function joinMeeting(room, name, stream, audioMuted, videoMuted) {
  show('meeting');
  for (const t of stream.getAudioTracks()) t.enabled = !audioMuted;
  if (videoMuted) for (const t of stream.getVideoTracks()) { t.stop(); stream.removeTrack(t); }
  const meeting = new Meeting({ room, name, stream, audioMuted, videoMuted, secret: meetingKey?.secret });
  /** @type {any} */ (window).aconfi = meeting; // for debugging and the browser tests
  embedMeeting(meeting);

  const grid = $('grid');
  const banner = $('banner');
  /** @param {string|null} text */
  const setBanner = (text) => {
    if (text && text !== banner.textContent) announce(text);
    banner.textContent = text ?? '';
    banner.hidden = !text;
  };

  const self = makeTile('self');
  self.video.muted = true;
  // A video element given a stream without tracks holds up the page's
  // load event for good (Chromium): a picture only once there is a camera.
  if (stream.getVideoTracks().length > 0) self.video.srcObject = stream;
  self.tile.classList.add('self');
  grid.append(self.tile);
  const ownVoice = voiceFeedback(() => meeting.audioMuted,
    (on) => self.tile.classList.toggle('voice', on), (on) => {
      if (on && $('muted-hint').hidden) announce(S().mutedTalking);
      $('muted-hint').hidden = !on;
    });
  const renderSelf = () => {
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
  renderSelf();

  /** @type {Map<number, ReturnType<typeof makeTile>>} */
  const tiles = new Map();
  /** @param {number} id */
  const tileFor = (id) => {
    let t = tiles.get(id);
    if (!t) {
      t = makeTile(String(id));
      t.tile.classList.toggle('speaking', id === meeting.speaker);
      tiles.set(id, t);
      grid.append(t.tile);
      layoutGrid(grid);
    }
    return t;
  };
  const renderCount = () => { $('count').textContent = S().participantsCount(tiles.size + 1); };

  // One's own picture: in the grid, or (as the user prefers, and only with
  // someone else to look at) small in a corner, where it can be dragged.
  const body = /** @type {HTMLElement} */ ($('meeting').querySelector('.body'));
  let selfFloat = loadSetting(SELF_VIEW_KEY) === 'float';
  const placeSelf = () => {
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
    layoutGrid(grid);
  };
  $('selfview-btn').onclick = () => {
    selfFloat = !selfFloat;
    saveSetting(SELF_VIEW_KEY, selfFloat ? 'float' : 'grid');
    placeSelf();
  };
  dragWithin(self.tile, body);
  rerender.push(placeSelf);

  $('page-prev').onclick = () => { gridPage--; layoutGrid(grid); };
  $('page-next').onclick = () => { gridPage++; layoutGrid(grid); };
  const renderTrust = () => {
    for (const [id, t] of tiles) setTrust(t, trustOf(meeting, id));
  };
  rerender.push(wireSafetyCode(meeting, renderTrust));

  meeting.addEventListener('participants', (ev) => {
    const ps = /** @type {CustomEvent} */ (ev).detail.participants;
    for (const [id, t] of tiles) {
      if (!ps.has(id)) { t.tile.remove(); tiles.delete(id); }
    }
    for (const p of ps.values()) {
      updateTile(tileFor(p.id), p.name ?? S().guest, p.audio_muted, p.video_muted, p.hand_raised);
      setTrust(tileFor(p.id), trustOf(meeting, p.id));
    }
    placeSelf();
    renderCount();
  });
  /** Screen shares by sharer; shown on the stage or as a tile. */
  /** @type {Map<number, ReturnType<typeof makeTile>>} */
  const screens = new Map();
  /** @type {'stage'|'grid'} */
  let view = 'stage';
  const renderStage = () => {
    const stage = $('stage');
    // On the stage: a shared screen; else, with three or more people, the
    // one speaking (never oneself: one's own picture is the small one).
    const speaking = meeting.speaker !== meeting.you && meeting.speaker !== null ? tiles.get(meeting.speaker) : undefined;
    const crowd = tiles.size >= 2;
    const first = [...screens.values()][0] ?? (crowd ? speaking : undefined);
    const staged = view === 'stage' && first !== undefined;
    for (const t of [...screens.values(), ...tiles.values()]) {
      const home = staged && t === first ? stage : grid;
      if (t.tile.parentElement !== home) home.append(t.tile);
    }
    stage.hidden = !staged;
    $('meeting').querySelector('.body').classList.toggle('staged', staged);
    setIconLabel($('view-btn'), view === 'stage' ? 'grid' : 'stage', view === 'stage' ? S().gridView : S().stageView);
    // Offered whenever the stage can have someone on it, so it does not
    // come and go as people take turns speaking.
    $('view-btn').hidden = screens.size === 0 && !crowd;
    for (const [id, t] of screens) t.name.textContent = S().screenOf(nameOf(meeting, id));
    layoutGrid(grid);
    reportView();
  };
  const dropScreen = (/** @type {number} */ id) => {
    screens.get(id)?.tile.remove();
    screens.delete(id);
    renderStage();
  };
  rerender.push(renderStage);
  // The speaker's tile is outlined, one's own included; in stage view it
  // takes the stage.
  meeting.addEventListener('speaker', () => {
    for (const [id, t] of tiles) t.tile.classList.toggle('speaking', id === meeting.speaker);
    self.tile.classList.toggle('speaking', meeting.speaker !== null && meeting.speaker === meeting.you);
    renderStage();
  });
  $('view-btn').onclick = () => { view = view === 'stage' ? 'grid' : 'stage'; renderStage(); };
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
  rerender.push(markPaused);

  // Every two seconds, each tile's connection quality: for the others,
  // the packets of theirs lost on the way to us (and their jitter) since
  // the last look; for oneself, what the server reports losing of ours
  // (and the round trip).
  /** @type {Map<number, {received: number, lost: number}>} */
  const counted = new Map();
  const qualityTimer = setInterval(async () => {
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
  rerender.push(() => {
    for (const t of [self, ...tiles.values()]) setQuality(t, t.quality.hidden ? undefined : /** @type {any} */ (t.quality.dataset.level));
  });
  meeting.addEventListener('participants', (ev) => {
    const ps = /** @type {CustomEvent} */ (ev).detail.participants;
    for (const id of [...screens.keys()]) if (!ps.get(id)?.screen_sharing) dropScreen(id);
    // Someone came or went: the stage may have (or lose) its speaker.
    renderStage();
  });

  meeting.addEventListener('track', (ev) => {
    const { participant, kind, track, screen, mid } = /** @type {CustomEvent} */ (ev).detail;
    if (screen) {
      let st = screens.get(participant);
      if (!st) {
        st = makeTile(`screen-${participant}`);
        st.tile.classList.add('screen-tile');
        st.video.muted = true;
        st.video.srcObject = st.stream;
        screens.set(participant, st);
      }
      for (const old of st.stream.getVideoTracks()) st.stream.removeTrack(old);
      st.stream.addTrack(track);
      st.mid = mid;
      markPaused();
      resized?.observe(st.video);
      renderStage();
      play(st.video);
      reportView();
      return;
    }
    const t = tileFor(participant);
    for (const old of kind === 'audio' ? t.stream.getAudioTracks() : t.stream.getVideoTracks()) t.stream.removeTrack(old);
    t.stream.addTrack(track);
    if (!t.video.srcObject) t.video.srcObject = t.stream;
    if (kind === 'video') t.mid = mid;
    markPaused();
    resized?.observe(t.video);
    play(t.video);
    reportView();
  });
  // The server learns which videos are on screen and how large (device
  // pixels), whenever the layout changes: hidden tiles cost nothing, small
  // ones get a small layer.
  let viewQueued = false;
  function reportView() {
    if (viewQueued) return;
    viewQueued = true;
    requestAnimationFrame(() => {
      viewQueued = false;
      const dpr = window.devicePixelRatio || 1;
      const stage = $('stage');
      const shown = [];
      for (const t of [...tiles.values(), ...screens.values()]) {
        if (t.mid === null || !t.tile.isConnected) continue;
        const r = t.video.getBoundingClientRect();
        if (r.width < 1 || r.height < 1) continue;
        shown.push({
          mid: t.mid, width: Math.round(r.width * dpr), height: Math.round(r.height * dpr), stage: t.tile.parentElement === stage,
        });
      }
      meeting.sendView(shown);
    });
  }
  // Every received video is watched (and the grid and stage, for tiles
  // coming and going).
  const resized = typeof ResizeObserver === 'function' ? new ResizeObserver(reportView) : null;
  resized?.observe(grid);
  resized?.observe($('stage'));
  meeting.addEventListener('media', reportView);
  let restarting = false;
  meeting.addEventListener('state', (ev) => {
    const { state, reason, code } = /** @type {CustomEvent} */ (ev).detail;
    // Out of the meeting: the microphone is no longer listened to.
    if (state === 'left' || state === 'failed') { ownVoice(undefined); clearInterval(qualityTimer); }
    // A server that said it is restarting is not reachable for a while;
    // the failed attempts meanwhile do not change that story.
    if (state === 'reconnecting' && code === CloseCode.GOING_AWAY) restarting = true;
    else if (state !== 'connecting' && state !== 'reconnecting') restarting = false;
    if (restarting) setBanner(S().serverRestarting);
    else if (state === 'connecting') setBanner(S().connecting);
    // Until media connects once more, say why it did not last time.
    else if (state === 'joined') setBanner(meeting.mediaFailing ? S().mediaFailed : null);
    else if (state === 'reconnecting') setBanner(code === CloseCode.MEDIA_FAILED ? S().mediaFailed : S().reconnecting);
    else if (state === 'left') ended(S().leftTitle, '', true);
    else if (state === 'failed') {
      // Coming back cannot help after these.
      const final = [CloseCode.REMOVED, CloseCode.E2EE_REQUIRED, CloseCode.NOT_E2EE, E2EE_WRONG_KEY].includes(code);
      ended(S().failedTitle, closeText(code) ?? reason ?? '', !final);
    }
    else if (state === 'password') show('password-view');
    else if (state === 'unprotected') show('unprotected-view');
    else if (state === 'lobby') show('lobby-view');
    if (state === 'joined') show('meeting');
  });
  meeting.addEventListener('media', () => { if (meeting.state === 'joined') setBanner(null); });
  // In a cluster, the room may live on a node that started after this page
  // loaded: the browser refuses to connect there, so the meeting is opened
  // on that node's own page, with the key, name and mute states (never the
  // password) in the fragment, which does not reach any server.
  document.addEventListener('securitypolicyviolation', (ev) => {
    if (ev.effectiveDirective === 'connect-src') meeting.blocked(ev.blockedURI);
  });
  meeting.addEventListener('relocate', async (ev) => {
    const { origin } = /** @type {CustomEvent} */ (ev).detail;
    const frag = new URLSearchParams();
    if (meetingKey) frag.set('key', meetingKey.text);
    if (meeting.name) frag.set('name', meeting.name);
    if (meeting.audioMuted) frag.set('mic', 'off');
    if (meeting.videoMuted) frag.set('camera', 'off');
    // The key goes to another origin's page only when the user says so,
    // and the page there asks again before camera and microphone go on.
    const question = meetingKey ? S().relocateKey(origin) : S().relocate(origin);
    if (await confirmAction(question, S().relocateOk)) location.assign(`${origin}/${room}#${frag}`);
    else ended(S().failedTitle, S().relocateDeclined(origin), true);
  });
  meeting.addEventListener('password', (ev) => {
    const { wrong, retryAfterMs } = /** @type {CustomEvent} */ (ev).detail;
    const msg = $('password-msg');
    msg.textContent = retryAfterMs ? S().passwordWait(Math.ceil(retryAfterMs / 1000)) : wrong ? S().passwordWrong : '';
    msg.hidden = !msg.textContent;
    $('password-input').focus();
  });
  $('unprotected-join').onclick = () => meeting.joinAnyway();
  $('unprotected-leave').onclick = () => meeting.leave();
  $('password-form').onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    meeting.submitPassword(String($('password-input').value));
    $('password-input').value = '';
  };

  const renderPanel = () => { renderPeople(meeting, name); renderSelf(); };
  rerender.push(renderPanel, renderCount);
  wireSettings(meeting);
  rerender.push(wireLiveStream(meeting));
  for (const ev of ['self', 'room', 'lobby', 'participants', 'e2ee']) meeting.addEventListener(ev, renderPanel);
  meeting.addEventListener('lobby', () => { if (meeting.moderator && meeting.waiting.size > 0) setSide(true); });
  meeting.addEventListener('chat', (ev) => {
    const { from, text, private: priv } = /** @type {CustomEvent} */ (ev).detail;
    const label = priv ? S().privateFrom(nameOf(meeting, from)) : nameOf(meeting, from);
    appendChat(label, text ?? S().chatUndecryptable, priv, false, text === null);
    // With the panel closed, the chat button counts what is new.
    if ($('side').hidden) { unread++; renderUnread(); }
  });
  meeting.addEventListener('notice', (ev) => {
    const { kind, id, message } = /** @type {CustomEvent} */ (ev).detail;
    if (kind === 'muted_by') { toast(S().mutedByNotice); renderSelf(); }
    else if (kind === 'unmute_request') toast(S().unmuteRequestNotice);
    else if (kind === 'refused') {
      // The server's reason is English; show ours, in the user's language.
      const request = /** @type {CustomEvent} */ (ev).detail.request;
      console.info(`refused ${request}: ${message}`);
      toast(request === 'chat' ? S().chatRefused : S().refusedGeneric);
    }
    else if (kind === 'joined') toast(S().joinedNotice(nameOf(meeting, id)));
    else if (kind === 'left') toast(S().leftNotice(/** @type {CustomEvent} */ (ev).detail.name ?? S().guest));
  });
  $('hand').onclick = () => { meeting.raiseHand(!meeting.handRaised); renderPanel(); };
  $('share').hidden = !navigator.mediaDevices?.getDisplayMedia;
  $('share').onclick = async () => {
    try {
      if (meeting.screenSharing) await meeting.stopScreen();
      else await meeting.shareScreen();
    } catch { /* the user cancelled the picker */ }
    renderSelf();
  };
  let unread = 0;
  const renderUnread = () => {
    $('unread').textContent = unread ? String(unread) : '';
    $('unread').hidden = unread === 0;
    setIconLabel($('side-btn'), 'chat', unread ? `${S().panel} (${S().unread(unread)})` : S().panel);
  };
  rerender.push(renderUnread);
  /** Opens or closes the side panel; open, nothing in it is unread. @param {boolean} open */
  const setSide = (open) => {
    $('side').hidden = !open;
    $('side-btn').setAttribute('aria-expanded', String(open));
    if (open) { unread = 0; renderUnread(); }
    layoutGrid(grid);
  };
  $('side-btn').onclick = (/** @type {MouseEvent} */ e) => {
    setSide($('side').hidden);
    // Opened from the keyboard (shortcut or Enter): straight to the chat box.
    if (!$('side').hidden && e.detail === 0) $('chat-input').focus();
  };
  wireMoreMenu();
  $('shortcuts-btn').onclick = showShortcuts;
  document.onkeydown = onShortcut;
  $('chat-form').onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const text = String($('chat-input').value);
    if (!text.trim()) return;
    if ($('chat-to').value === RECIPIENT_GONE) { toast(S().recipientGone); $('chat-to').focus(); return; }
    const to = $('chat-to').value ? Number($('chat-to').value) : undefined;
    const label = to === undefined ? `${name ?? S().guest} (${S().you})` : S().privateTo(nameOf(meeting, to));
    $('chat-input').value = '';
    meeting.sendChat(text, to).then(
      () => appendChat(label, text, to !== undefined, true),
      () => { toast(S().chatNotSealed); $('chat-input').value = text; },
    );
  };

  $('mic').onclick = async () => {
    if (meeting.audioMuted && meeting.stream.getAudioTracks().length === 0) {
      // Joined without a microphone (the link said mic=off, or it was not
      // allowed then): ask for it now, on the sender that was kept for it.
      const track = (await acquire(true, false)).getAudioTracks()[0];
      if (!track) { toast(S().noMicrophone); return; }
      await meeting.replaceAudioTrack(track);
    }
    meeting.setAudioMuted(!meeting.audioMuted);
    renderSelf();
  };
  $('cam').onclick = async () => {
    if (meeting.videoMuted) {
      const s = await acquire(false, true);
      const track = s.getVideoTracks()[0];
      if (!track) return;
      await meeting.setVideoMuted(false, track);
    } else {
      await meeting.setVideoMuted(true, null);
    }
    self.video.srcObject = stream;
    renderSelf();
  };
  $('copy').onclick = async () => {
    // The key travels with the link; nothing else of the fragment does.
    const link = `${location.origin}${location.pathname}${meetingKey ? `#key=${meetingKey.text}` : ''}`;
    try { await navigator.clipboard.writeText(link); } catch { /* clipboard denied: show it instead */ }
    setBanner(`${S().linkCopied}: ${link}`);
    setTimeout(() => { if (banner.textContent?.startsWith(S().linkCopied)) setBanner(null); }, 3000);
  };
  $('leave').onclick = () => {
    meeting.leave();
    for (const t of stream.getTracks()) t.stop();
  };
  window.addEventListener('pagehide', () => meeting.leave());
  new ResizeObserver(() => layoutGrid(grid)).observe(grid);
  setBanner(S().connecting);
  renderCount();
  meeting.start();
}

/** @param {string} title @param {string} detail @param {boolean} canRejoin */
function ended(title, detail, canRejoin) {
  show('ended');
  $('ended-title').textContent = title;
  $('ended-detail').textContent = detail;
  $('rejoin').hidden = !canRejoin;
  $('rejoin').onclick = () => { location.hash = meetingKey ? `key=${meetingKey.text}` : ''; location.reload(); };
}

main();
