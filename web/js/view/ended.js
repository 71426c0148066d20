// The screen after a meeting: left, removed, refused or failed, with the
// reason in the user's language and, where coming back can help, Rejoin.

import { S } from '../i18n.js';
import { CloseCode, E2EE_WRONG_KEY } from '../protocol.js';
import { $, show } from './dom.js';

/** A localised reason for a close code, if we have one. @param {number|undefined} code */
export function closeText(code) {
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

/**
 * @param {string} title @param {string} detail @param {boolean} canRejoin
 * @param {{text: string}|null} [key] the link's end-to-end key, kept for Rejoin
 */
export function showEnded(title, detail, canRejoin, key = null) {
  show('ended');
  $('ended-title').textContent = title;
  $('ended-detail').textContent = detail;
  $('rejoin').hidden = !canRejoin;
  $('rejoin').onclick = () => { location.hash = key ? `key=${key.text}` : ''; location.reload(); };
}
