// The embedding API (docs/embedding.md): a site that shows a meeting in an
// <iframe> drives it with postMessage — join, leave, microphone, camera —
// and hears what happens in it. Active only inside a frame. Commands are
// taken only from the parent window; events go only to the parent's
// origin, never to '*' (they carry names).
//
// Commands act as the user's own clicks do: join through the prejoin
// screen's Join, the rest by pressing the meeting's toolbar buttons (as the
// keyboard shortcuts do), so the page looks and behaves exactly as if the
// user had clicked.

/** The version every message carries as its `aconfi` field. */
export const EMBED_VERSION = 1;

/** Longest display name a `join` may bring (as the prejoin field). */
const MAX_NAME = 64;
/** Events kept while the parent's origin is not known yet. */
const MAX_QUEUED = 100;

const COMMANDS = new Set(['hello', 'join', 'leave', 'mute', 'unmute', 'camera-off', 'camera-on']);

/**
 * @typedef {{type: 'hello'|'leave'|'mute'|'unmute'|'camera-off'|'camera-on'}
 *   | {type: 'join', name?: string, mic?: boolean, camera?: boolean}} EmbedCommand
 * @typedef {{error: string, command: string}} EmbedRefusal
 */

/**
 * What a message from the embedding page asks for: a command, a refusal
 * (ours, but not valid: the page is told), or null (not ours: ignored).
 * Never throws, whatever `data` is.
 * @param {unknown} data
 * @returns {EmbedCommand|EmbedRefusal|null}
 */
export function parseCommand(data) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const d = /** @type {Record<string, unknown>} */ (data);
  if (d.aconfi !== EMBED_VERSION || typeof d.type !== 'string') return null;
  const type = d.type;
  // Echoed back only when it is a word of ours or looks like one.
  const command = /^[a-z-]{1,32}$/.test(type) ? type : '';
  if (!COMMANDS.has(type)) return { error: 'unknown command', command };
  if (type !== 'join') return /** @type {EmbedCommand} */ ({ type });
  /** @type {{type: 'join', name?: string, mic?: boolean, camera?: boolean}} */
  const join = { type: 'join' };
  if (d.name !== undefined) {
    if (typeof d.name !== 'string' || d.name.trim().length > MAX_NAME) return { error: `name must be a string of at most ${MAX_NAME} characters`, command };
    join.name = d.name.trim();
  }
  for (const key of /** @type {const} */ (['mic', 'camera'])) {
    if (d[key] === undefined) continue;
    if (typeof d[key] !== 'boolean') return { error: `${key} must be true or false`, command };
    join[key] = /** @type {boolean} */ (d[key]);
  }
  return join;
}

// (No window under Node, where tests/js checks `parseCommand`.)
const framed = typeof window !== 'undefined' && window.parent !== window;

/**
 * The parent's origin, where events go: from `location.ancestorOrigins`
 * where the browser has it (not Firefox), else from the parent's first
 * command. An opaque origin ('null': a sandboxed or file: page) cannot be
 * written to without '*', so such a parent hears nothing.
 * @type {string|null}
 */
let parentOrigin = null;
if (framed) {
  const first = location.ancestorOrigins?.[0];
  if (first && first !== 'null') parentOrigin = first;
}

/** @type {object[]} events waiting for the parent's origin */
const queue = [];

/** @param {string} type @param {Record<string, unknown>} [fields] */
function emit(type, fields = {}) {
  if (!framed) return;
  const msg = { aconfi: EMBED_VERSION, type, ...fields };
  if (parentOrigin) window.parent.postMessage(msg, parentOrigin);
  else if (queue.length < MAX_QUEUED) queue.push(msg);
}

let readySent = false;
/** @param {'landing'|'prejoin'|'meeting'|'ended'} screen */
function ready(screen) {
  if (readySent) return;
  readySent = true;
  emit('ready', { screen });
  if (pendingJoin && screen !== 'prejoin') {
    emit('error', { command: 'join', error: 'no meeting to join on this page' });
    pendingJoin = null;
  }
}

/** @type {((opts: {name?: string, mic?: boolean, camera?: boolean}) => void)|null} the prejoin screen's Join */
let joinAction = null;
/** @type {{name?: string, mic?: boolean, camera?: boolean}|null} a `join` that came before Join could work */
let pendingJoin = null;
/** @type {import('./meeting.js').Meeting|null} */
let meeting = null;

/** Presses a toolbar button as the user would. @param {string} id */
function press(id) {
  const button = document.getElementById(id);
  if (!(button instanceof HTMLButtonElement) || button.disabled) return false;
  button.click();
  return true;
}

/** @param {EmbedCommand} cmd */
function run(cmd) {
  const refuse = (/** @type {string} */ error) => emit('error', { command: cmd.type, error });
  switch (cmd.type) {
    case 'hello':
      return;
    case 'join': {
      const { type: _, ...opts } = cmd;
      if (joinAction) { const join = joinAction; joinAction = null; join(opts); }
      else if (meeting) refuse('already in the meeting');
      else if (readySent) refuse('no meeting to join on this page');
      else pendingJoin = opts;
      return;
    }
    case 'leave':
      if (!meeting || meeting.state === 'left' || meeting.state === 'failed') return refuse('not in a meeting');
      if (!press('leave')) meeting.leave();
      return;
    default: {
      if (!meeting || meeting.state !== 'joined') return refuse('not in a meeting');
      const audio = cmd.type === 'mute' || cmd.type === 'unmute';
      const wantOff = cmd.type === 'mute' || cmd.type === 'camera-off';
      const isOff = audio ? meeting.audioMuted : meeting.videoMuted;
      if (isOff !== wantOff && !press(audio ? 'mic' : 'cam')) refuse('not available');
    }
  }
}

if (framed) {
  window.addEventListener('message', (ev) => {
    if (ev.source !== window.parent) return;
    if (parentOrigin !== null && ev.origin !== parentOrigin) return;
    try {
      const cmd = parseCommand(ev.data);
      if (!cmd) return;
      if (parentOrigin === null) {
        if (ev.origin === 'null') return;
        parentOrigin = ev.origin;
        for (const msg of queue.splice(0)) window.parent.postMessage(msg, parentOrigin);
      }
      if ('error' in cmd) emit('error', { command: cmd.command, error: cmd.error });
      else run(cmd);
    } catch (e) {
      // A command that fails must not take the page down; the parent is told.
      console.warn('embed command failed', e);
    }
  });
  // Screens that take no command of ours say so once loaded; the prejoin
  // screen and the meeting say `ready` when they can act on one.
  window.addEventListener('load', () => {
    const shown = [...document.querySelectorAll('.view')].find((v) => !(/** @type {HTMLElement} */ (v)).hidden)?.id;
    if (shown === 'landing' || shown === 'ended') ready(shown);
  });
}

/** Whether this page is inside a frame (of a site allowed to frame it). */
export function isFramed() {
  return framed;
}

/**
 * The prejoin screen can join now: a `join` command (waiting, or to come)
 * calls `join` once with its options.
 * @param {(opts: {name?: string, mic?: boolean, camera?: boolean}) => void} join
 */
export function embedPrejoin(join) {
  if (!framed) return;
  joinAction = join;
  ready('prejoin');
  if (pendingJoin) { const opts = pendingJoin; pendingJoin = null; run({ type: 'join', ...opts }); }
}

/**
 * The page joins `m` (from the prejoin screen or by itself, `#autojoin=1`):
 * its events go to the parent from now on.
 * @param {import('./meeting.js').Meeting} m
 */
export function embedMeeting(m) {
  if (!framed) return;
  meeting = m;
  joinAction = null;
  ready('meeting');
  /** @type {Map<number, string|null>} the others, as last told to the parent */
  const known = new Map();
  let told = '';
  let joined = false;
  const muted = () => ({ audioMuted: m.audioMuted, videoMuted: m.videoMuted });
  const tellMuted = () => {
    const now = JSON.stringify(muted());
    if (!joined || now === told) return;
    told = now;
    emit('muted-changed', muted());
  };
  /** @param {number} id @param {string|null} name */
  const came = (id, name) => {
    if (known.has(id)) return;
    known.set(id, name);
    emit('participant-joined', { id, name });
  };
  /** @param {number} id */
  const went = (id) => {
    if (!known.has(id)) return;
    emit('participant-left', { id, name: known.get(id) });
    known.delete(id);
  };
  m.addEventListener('state', (ev) => {
    const { state, code } = /** @type {CustomEvent} */ (ev).detail;
    if (state === 'joined') {
      // Again after an automatic rejoin, with the new id; the others who
      // came or went meanwhile are told as such.
      joined = true;
      told = JSON.stringify(muted());
      emit('joined', { id: m.you, name: m.name ?? null, ...muted() });
      for (const id of [...known.keys()]) if (!m.participants.has(id)) went(id);
      for (const p of m.participants.values()) came(p.id, p.name ?? null);
    } else if (state === 'left' || state === 'failed') {
      joined = false;
      known.clear();
      emit('left', state === 'failed' ? { reason: 'failed', code: code ?? null } : { reason: 'left' });
    }
  });
  m.addEventListener('notice', (ev) => {
    const { kind, id } = /** @type {CustomEvent} */ (ev).detail;
    if (!joined) return;
    if (kind === 'joined') came(id, m.participants.get(id)?.name ?? null);
    else if (kind === 'left') went(id);
  });
  m.addEventListener('self', tellMuted);
}
