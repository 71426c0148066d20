// The signaling protocol (docs/protocol.md) as plain functions. No DOM here.

/** Protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** WebSocket close codes the server uses, and what they mean for a client. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  TOO_BIG: 1009,
  MALFORMED: 4000,
  UNEXPECTED_MESSAGE: 4001,
  UNSUPPORTED_VERSION: 4002,
  INVALID_ROOM_NAME: 4003,
  BAD_SDP: 4004,
  MEDIA_FAILED: 4005,
  INTERNAL_ERROR: 4006,
  RATE_LIMITED: 4007,
  ROOM_FULL: 4008,
  REMOVED: 4009,
  LOCKED: 4010,
  ENDED: 4011,
  LOBBY_REFUSED: 4012,
  E2EE_REQUIRED: 4013,
  NOT_E2EE: 4014,
  MOVED: 4015,
});

/**
 * Not a close code on the wire: the client's own conclusion that its link's
 * end-to-end key is not the meeting's (nobody in it could verify it).
 */
export const E2EE_WRONG_KEY = 4990;

/**
 * Close codes after which reconnecting cannot help: the meeting is over for
 * us, or the server says this client broke the protocol (it would again).
 * When the client itself starts over it closes with INTERNAL_ERROR.
 */
/** @type {Set<number>} */
export const FATAL_CLOSE_CODES = new Set([
  CloseCode.NORMAL,
  CloseCode.UNSUPPORTED_DATA,
  CloseCode.TOO_BIG,
  CloseCode.MALFORMED,
  CloseCode.UNEXPECTED_MESSAGE,
  CloseCode.UNSUPPORTED_VERSION,
  CloseCode.INVALID_ROOM_NAME,
  CloseCode.ROOM_FULL,
  CloseCode.REMOVED,
  CloseCode.LOCKED,
  CloseCode.ENDED,
  CloseCode.LOBBY_REFUSED,
  CloseCode.E2EE_REQUIRED,
  CloseCode.NOT_E2EE,
  E2EE_WRONG_KEY,
]);

/**
 * @typedef {{id: number, name?: string, audio_muted: boolean, video_muted: boolean, moderator: boolean, hand_raised: boolean, screen_sharing?: boolean}} ParticipantInfo
 * @typedef {{locked: boolean, lobby: boolean, password: boolean, e2ee?: boolean}} RoomState
 * @typedef {{mid: string, participant: number, kind: 'audio'|'video', screen?: boolean}} TrackInfo
 * @typedef {'starting'|'live'|'reconnecting'|'stopped'|'failed'} StreamStatus
 * @typedef {{type: 'joined', version: number, you: number, participants: ParticipantInfo[], moderator: boolean, room: RoomState, stream_unavailable?: string}
 *   | {type: 'room_updated', room: RoomState}
 *   | {type: 'stream_state', state: StreamStatus, reason?: string}
 *   | {type: 'password_required', wrong: boolean, retry_after_ms?: number}
 *   | {type: 'password_not_required'}
 *   | {type: 'in_lobby'}
 *   | {type: 'lobby_request', id: number, name?: string}
 *   | {type: 'lobby_left', id: number}
 *   | {type: 'muted_by', by: number}
 *   | {type: 'unmute_request', by: number}
 *   | {type: 'chat', from: number, text: string, private: boolean, sealed?: boolean}
 *   | {type: 'e2ee', from: number, data: string}
 *   | {type: 'refused', request: string, message: string}
 *   | {type: 'participant_joined', participant: ParticipantInfo}
 *   | {type: 'participant_updated', participant: ParticipantInfo}
 *   | {type: 'participant_left', id: number}
 *   | {type: 'active_speaker', participant: number}
 *   | {type: 'video_paused', mids: string[]}
 *   | {type: 'answer', sdp: string}
 *   | {type: 'offer', sdp: string, tracks: TrackInfo[]}
 *   | {type: 'moved', url: string}
 *   | {type: 'nodes', urls: string[]}
 *   | {type: 'error', code: number, message: string}} ServerMsg
 */

/**
 * @param {string} room
 * @param {string|undefined} name
 * @param {boolean} audioMuted
 * @param {boolean} videoMuted
 * @param {string} [password]
 * @param {boolean} [e2ee] the link carries an end-to-end key
 */
export function joinMsg(room, name, audioMuted, videoMuted, password, e2ee = false) {
  /** @type {Record<string, unknown>} */
  const m = { type: 'join', version: PROTOCOL_VERSION, room, audio_muted: audioMuted, video_muted: videoMuted };
  if (name) m.name = name;
  if (password) m.password = password;
  if (e2ee) m.e2ee = true;
  return m;
}

/** @param {string} text @param {number|undefined} to @param {boolean} [sealed] text is the sealed ciphertext */
export function chatMsg(text, to, sealed = false) {
  /** @type {Record<string, unknown>} */
  const m = { type: 'chat', text };
  if (to !== undefined) m.to = to;
  if (sealed) m.sealed = true;
  return m;
}

/** @param {string} sdp @param {string|null} screenMid */
export const offerMsg = (sdp, screenMid) => (screenMid ? { type: 'offer', sdp, screen_mid: screenMid } : { type: 'offer', sdp });
/** @param {string} sdp */
export const answerMsg = (sdp) => ({ type: 'answer', sdp });
/** @param {boolean} audioMuted @param {boolean} videoMuted @param {boolean} screenSharing */
export const mediaStateMsg = (audioMuted, videoMuted, screenSharing) =>
  ({ type: 'media_state', audio_muted: audioMuted, video_muted: videoMuted, screen_sharing: screenSharing });
export const leaveMsg = () => ({ type: 'leave' });
/** Most tiles a `view` may list, as the server's. */
export const MAX_VIEW_TILES = 64;
/**
 * The received videos on screen and their size in device pixels (the
 * largest MAX_VIEW_TILES of them).
 * @param {{mid: string, width: number, height: number, stage: boolean}[]} tiles
 */
export const viewMsg = (tiles) => ({
  type: 'view',
  tiles: [...tiles].sort((a, b) => b.width * b.height - a.width * a.height).slice(0, MAX_VIEW_TILES),
});

/**
 * The camera's simulcast layers, lowest first (the server reads their order
 * from the offer): a quarter, half and full resolution. The server sends
 * each receiver the one its bandwidth and tile size call for.
 */
export const CAMERA_LAYERS = Object.freeze([
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
]);

/** Chat size limit, as the server's. */
export const MAX_CHAT_BYTES = 4096;

/** Same rule as the server's RoomName::parse, to give feedback before a round trip. */
const RESERVED = new Set(['new', 'ws', 'static', 'healthz', 'favicon.ico', 'robots.txt']);
/** @param {string} name @returns {string|null} the normalised name, or null if invalid */
export function normaliseRoomName(name) {
  const n = name.trim().toLowerCase();
  if (n.length < 3 || n.length > 64) return null;
  if (!/^[a-z0-9_-]+$/.test(n)) return null;
  if (RESERVED.has(n)) return null;
  return n;
}

/**
 * Parses a server message, returning null for anything that is not one.
 * @param {string} text
 * @returns {ServerMsg|null}
 */
export function parseServerMsg(text) {
  try {
    const m = JSON.parse(text);
    return m && typeof m.type === 'string' ? m : null;
  } catch {
    return null;
  }
}

/**
 * The signaling WebSocket of a cluster node given by its public URL
 * (`https://host[:port]`, as `moved` and `nodes` give it), or null if the
 * URL is anything else.
 * @param {string} url
 * @returns {string|null}
 */
export function nodeWsUrl(url) {
  const m = /^https:\/\/([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/i.exec(url);
  return m ? `wss://${m[1]}${m[2] ?? ''}/ws` : null;
}

/**
 * Whether a `moved` to `target` (a WebSocket URL) may be followed: only to
 * the page's own server or a node that server named. Another node (one we
 * were sent to, compromised, say) cannot send the page anywhere else.
 * @param {string|null} target @param {string} own @param {string[]} trusted
 */
export function mayFollow(target, own, trusted) {
  return target !== null && (target === own || trusted.includes(target));
}

/**
 * Where to connect after `failed` could not be reached: round the page's
 * own server first, then the other nodes the server named, in turn.
 * @param {string} failed the WebSocket URL that failed
 * @param {string} own the page's own server's
 * @param {string[]} nodes the other nodes' WebSocket URLs
 */
export function nextServer(failed, own, nodes) {
  const all = [own, ...nodes.filter((n) => n !== own)];
  return all[(all.indexOf(failed) + 1) % all.length];
}

/**
 * Reads `#name=...&autojoin=1&mic=off&camera=off` from a URL fragment.
 * The fragment never reaches the server.
 * @param {string} hash
 */
export function parseFragment(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  return {
    name: p.get('name') ?? undefined,
    autojoin: p.get('autojoin') === '1',
    micOff: p.get('mic') === 'off',
    cameraOff: p.get('camera') === 'off',
  };
}

/** The ingest URL the live-stream dialog starts with: YouTube's RTMPS. */
export const YOUTUBE_INGEST = 'rtmps://a.rtmps.youtube.com/live2';

/**
 * The URL to stream to: the ingest URL with the stream key as its last
 * path segment (a key pasted into the URL field is used as it is), or null
 * if it is not an rtmp:// or rtmps:// URL with a host.
 * @param {string} ingest @param {string} key
 * @returns {string|null}
 */
export function streamUrl(ingest, key) {
  const base = ingest.trim();
  const k = key.trim();
  if (!/^rtmps?:\/\/[^/\s]+/.test(base) || /\s/.test(k)) return null;
  return k ? `${base.replace(/\/+$/, '')}/${k}` : base;
}

/** Whether a stream state means the meeting is being streamed. @param {string|null|undefined} state */
export function streamActive(state) {
  return state === 'starting' || state === 'live' || state === 'reconnecting';
}
