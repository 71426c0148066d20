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
});

/** Close codes after which reconnecting cannot help. */
/** @type {Set<number>} */
export const FATAL_CLOSE_CODES = new Set([
  CloseCode.NORMAL,
  CloseCode.UNSUPPORTED_VERSION,
  CloseCode.INVALID_ROOM_NAME,
  CloseCode.ROOM_FULL,
]);

/**
 * @typedef {{id: number, name?: string, audio_muted: boolean, video_muted: boolean}} ParticipantInfo
 * @typedef {{mid: string, participant: number, kind: 'audio'|'video'}} TrackInfo
 * @typedef {{type: 'joined', version: number, you: number, participants: ParticipantInfo[]}
 *   | {type: 'participant_joined', participant: ParticipantInfo}
 *   | {type: 'participant_updated', participant: ParticipantInfo}
 *   | {type: 'participant_left', id: number}
 *   | {type: 'answer', sdp: string}
 *   | {type: 'offer', sdp: string, tracks: TrackInfo[]}
 *   | {type: 'error', code: number, message: string}} ServerMsg
 */

/**
 * @param {string} room
 * @param {string|undefined} name
 * @param {boolean} audioMuted
 * @param {boolean} videoMuted
 */
export function joinMsg(room, name, audioMuted, videoMuted) {
  /** @type {Record<string, unknown>} */
  const m = { type: 'join', version: PROTOCOL_VERSION, room, audio_muted: audioMuted, video_muted: videoMuted };
  if (name) m.name = name;
  return m;
}

/** @param {string} sdp */
export const offerMsg = (sdp) => ({ type: 'offer', sdp });
/** @param {string} sdp */
export const answerMsg = (sdp) => ({ type: 'answer', sdp });
/** @param {boolean} audioMuted @param {boolean} videoMuted */
export const mediaStateMsg = (audioMuted, videoMuted) => ({ type: 'media_state', audio_muted: audioMuted, video_muted: videoMuted });
export const leaveMsg = () => ({ type: 'leave' });

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
