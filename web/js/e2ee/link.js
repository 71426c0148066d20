// The meeting secret in a link's fragment (`#key=…`): base64url without
// padding, 16 to 64 bytes. The fragment never reaches the server. No DOM.

/** Bytes of a newly made secret: 128 bits, 22 characters in the link. */
export const SECRET_BYTES = 16;
const MIN_BYTES = 16;
const MAX_BYTES = 64;

/** @param {Uint8Array} bytes */
export function toBase64Url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** @param {string} text @returns {Uint8Array|null} null if not base64url */
export function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** A fresh secret for a new meeting, as it goes into the link. */
export function newSecret() {
  return toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/**
 * The secret named by `key` in a fragment: its bytes and its text as in
 * the link, `null` when the fragment has none, or `'invalid'` when it has
 * one that cannot be a secret (a link cut short, say).
 * @param {string} hash e.g. `#key=…&name=Ada`
 * @returns {{secret: Uint8Array, text: string}|null|'invalid'}
 */
export function secretFromFragment(hash) {
  const text = new URLSearchParams(hash.replace(/^#/, '')).get('key');
  if (text === null) return null;
  const secret = fromBase64Url(text);
  if (!secret || secret.length < MIN_BYTES || secret.length > MAX_BYTES) return 'invalid';
  return { secret, text };
}
