// SFrame (RFC 9605): the header, key derivation, the sender-key ratchet and
// frame encryption, for every cipher suite the RFC defines, on WebCrypto
// only. Runs unchanged in a page, a worker and Node (the test vectors are
// checked there). No DOM here.
//
// KID and CTR are BigInts: they are 64-bit values, beyond what a JS number
// holds exactly.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

/**
 * @typedef {{id: number, name: string, hash: 'SHA-256'|'SHA-512', nh: number, nk: number, nn: number, nt: number, nka?: number}} Suite
 *   nh: hash output, nk: AEAD key, nn: nonce, nt: tag, nka: AES key of the
 *   AES-CTR + HMAC suites (whose AEAD key is nka + nh bytes)
 */

/** The cipher suites of RFC 9605, section 4.5, by their registered number. @type {Readonly<Record<number, Suite>>} */
export const SUITES = Object.freeze({
  1: { id: 1, name: 'AES_128_CTR_HMAC_SHA256_80', hash: 'SHA-256', nh: 32, nka: 16, nk: 48, nn: 12, nt: 10 },
  2: { id: 2, name: 'AES_128_CTR_HMAC_SHA256_64', hash: 'SHA-256', nh: 32, nka: 16, nk: 48, nn: 12, nt: 8 },
  3: { id: 3, name: 'AES_128_CTR_HMAC_SHA256_32', hash: 'SHA-256', nh: 32, nka: 16, nk: 48, nn: 12, nt: 4 },
  4: { id: 4, name: 'AES_128_GCM_SHA256_128', hash: 'SHA-256', nh: 32, nk: 16, nn: 12, nt: 16 },
  5: { id: 5, name: 'AES_256_GCM_SHA512_128', hash: 'SHA-512', nh: 64, nk: 32, nn: 12, nt: 16 },
});

/** The suite A-Confi uses: AES-GCM is in every browser's WebCrypto and fast. */
export const MEDIA_SUITE = SUITES[4];

// ---- bytes ----

/** @param {...Uint8Array} parts @returns {Uint8Array} */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `value` as `n` big-endian bytes. @param {bigint} value @param {number} n */
export function bigEndian(value, n) {
  const out = new Uint8Array(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Bytes needed for `value` (at least one). @param {bigint} value */
function byteLength(value) {
  let n = 1;
  while (value >> BigInt(8 * n) > 0n) n += 1;
  return n;
}

/** @param {Uint8Array} bytes @param {number} at @param {number} n */
function readBigEndian(bytes, at, n) {
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[at + i]);
  return v;
}

/** Compares in time independent of where they differ. @param {Uint8Array} a @param {Uint8Array} b */
function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// ---- header (RFC 9605, section 4.3) ----

const MAX_U64 = (1n << 64n) - 1n;

/**
 * The SFrame header for `kid` and `ctr`: a config byte, then KID and CTR in
 * the fewest big-endian bytes when they do not fit its 3-bit fields.
 * @param {bigint} kid @param {bigint} ctr
 */
export function encodeHeader(kid, ctr) {
  if (kid < 0n || kid > MAX_U64 || ctr < 0n || ctr > MAX_U64) throw new RangeError('KID and CTR are 64-bit');
  let config = 0;
  /** @type {Uint8Array[]} */
  const tail = [];
  if (kid < 8n) {
    config |= Number(kid) << 4;
  } else {
    const n = byteLength(kid);
    config |= 0x80 | ((n - 1) << 4);
    tail.push(bigEndian(kid, n));
  }
  if (ctr < 8n) {
    config |= Number(ctr);
  } else {
    const n = byteLength(ctr);
    config |= 0x08 | (n - 1);
    tail.push(bigEndian(ctr, n));
  }
  return concat(Uint8Array.of(config), ...tail);
}

/**
 * Parses the header at `at`; null if the bytes end too soon.
 * @param {Uint8Array} bytes @param {number} [at]
 * @returns {{kid: bigint, ctr: bigint, length: number} | null}
 */
export function decodeHeader(bytes, at = 0) {
  if (bytes.length <= at) return null;
  const config = bytes[at];
  let pos = at + 1;
  let kid;
  if (config & 0x80) {
    const n = ((config >> 4) & 0x07) + 1;
    if (bytes.length < pos + n) return null;
    kid = readBigEndian(bytes, pos, n);
    pos += n;
  } else {
    kid = BigInt((config >> 4) & 0x07);
  }
  let ctr;
  if (config & 0x08) {
    const n = (config & 0x07) + 1;
    if (bytes.length < pos + n) return null;
    ctr = readBigEndian(bytes, pos, n);
    pos += n;
  } else {
    ctr = BigInt(config & 0x07);
  }
  return { kid, ctr, length: pos - at };
}

// ---- HKDF (RFC 5869) on WebCrypto HMAC ----

/** @param {Suite['hash']} hash @param {Uint8Array} key @param {Uint8Array} data */
async function hmac(hash, key, data) {
  const k = await subtle.importKey('raw', /** @type {BufferSource} */ (key), { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, /** @type {BufferSource} */ (data)));
}

/** An empty salt is HashLen zero bytes (RFC 5869, 2.2). @param {Suite} suite @param {Uint8Array} salt @param {Uint8Array} ikm */
export function hkdfExtract(suite, salt, ikm) {
  return hmac(suite.hash, salt.length > 0 ? salt : new Uint8Array(suite.nh), ikm);
}

/** @param {Suite} suite @param {Uint8Array} prk @param {Uint8Array} info @param {number} length */
export async function hkdfExpand(suite, prk, info, length) {
  /** @type {Uint8Array[]} */
  const blocks = [];
  let prev = new Uint8Array(0);
  for (let i = 1, have = 0; have < length; i++) {
    prev = await hmac(suite.hash, prk, concat(prev, info, Uint8Array.of(i)));
    blocks.push(prev);
    have += prev.length;
  }
  return concat(...blocks).slice(0, length);
}

// ---- key derivation (section 4.4.2) and the ratchet (section 5.1) ----

/** @param {string} what @param {Suite} suite @param {bigint} kid */
const label = (what, suite, kid) =>
  concat(utf8.encode(`SFrame 1.0 Secret ${what} `), bigEndian(kid, 8), bigEndian(BigInt(suite.id), 2));

/**
 * The raw `sframe_secret`, `sframe_key` and `sframe_salt` for a base key.
 * @param {Suite} suite @param {bigint} kid @param {Uint8Array} baseKey
 */
export async function deriveSecrets(suite, kid, baseKey) {
  const secret = await hkdfExtract(suite, new Uint8Array(0), baseKey);
  const key = await hkdfExpand(suite, secret, label('key', suite, kid), suite.nk);
  const salt = await hkdfExpand(suite, secret, label('salt', suite, kid), suite.nn);
  return { secret, key, salt };
}

/**
 * The next base key of a sender's ratchet: a receiver that already holds a
 * key can follow, one that joins later cannot go back.
 * @param {Suite} suite @param {Uint8Array} baseKey
 */
export async function ratchet(suite, baseKey) {
  const prk = await hkdfExtract(suite, new Uint8Array(0), baseKey);
  return hkdfExpand(suite, prk, utf8.encode('SFrame 1.0 Ratchet'), suite.nh);
}

// ---- the AEAD (section 4.5, with AES-CTR + HMAC from 4.5.1) ----

/**
 * @typedef {{suite: Suite, gcm?: CryptoKey, ctr?: CryptoKey, auth?: Uint8Array}} Aead
 */

/** Imports an AEAD key (`sframe_key`). @param {Suite} suite @param {Uint8Array} key @returns {Promise<Aead>} */
export async function importAead(suite, key) {
  if (key.length !== suite.nk) throw new RangeError(`${suite.name} takes a ${suite.nk}-byte key`);
  if (!suite.nka) {
    return { suite, gcm: await subtle.importKey('raw', /** @type {BufferSource} */ (key), 'AES-GCM', false, ['encrypt', 'decrypt']) };
  }
  const ctr = await subtle.importKey('raw', /** @type {BufferSource} */ (key.slice(0, suite.nka)), 'AES-CTR', false, ['encrypt', 'decrypt']);
  return { suite, ctr, auth: key.slice(suite.nka) };
}

/** @param {Aead} a @param {Uint8Array} nonce @param {Uint8Array} aad @param {Uint8Array} ct */
async function ctrTag(a, nonce, aad, ct) {
  const lengths = concat(bigEndian(BigInt(aad.length), 8), bigEndian(BigInt(ct.length), 8), bigEndian(BigInt(a.suite.nt), 8));
  const tag = await hmac(a.suite.hash, /** @type {Uint8Array} */ (a.auth), concat(lengths, nonce, aad, ct));
  return tag.slice(0, a.suite.nt);
}

/** @param {Uint8Array} nonce */
const counterBlock = (nonce) => concat(nonce, new Uint8Array(4));

/**
 * AEAD.Encrypt: ciphertext with the tag appended.
 * @param {Aead} a @param {Uint8Array} nonce @param {Uint8Array} aad @param {Uint8Array} pt
 */
export async function aeadEncrypt(a, nonce, aad, pt) {
  if (a.gcm) {
    const params = { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 };
    return new Uint8Array(await subtle.encrypt(/** @type {AesGcmParams} */ (params), a.gcm, /** @type {BufferSource} */ (pt)));
  }
  const params = { name: 'AES-CTR', counter: counterBlock(nonce), length: 32 };
  const ct = new Uint8Array(await subtle.encrypt(/** @type {AesCtrParams} */ (params), /** @type {CryptoKey} */ (a.ctr), /** @type {BufferSource} */ (pt)));
  return concat(ct, await ctrTag(a, nonce, aad, ct));
}

/**
 * AEAD.Decrypt; throws if the tag does not authenticate.
 * @param {Aead} a @param {Uint8Array} nonce @param {Uint8Array} aad @param {Uint8Array} ct
 */
export async function aeadDecrypt(a, nonce, aad, ct) {
  if (a.gcm) {
    const params = { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 };
    return new Uint8Array(await subtle.decrypt(/** @type {AesGcmParams} */ (params), a.gcm, /** @type {BufferSource} */ (ct)));
  }
  if (ct.length < a.suite.nt) throw new Error('SFrame: ciphertext shorter than its tag');
  const inner = ct.subarray(0, ct.length - a.suite.nt);
  const tag = ct.subarray(ct.length - a.suite.nt);
  if (!equalBytes(tag, await ctrTag(a, nonce, aad, inner))) throw new Error('SFrame: authentication failed');
  const params = { name: 'AES-CTR', counter: counterBlock(nonce), length: 32 };
  return new Uint8Array(await subtle.decrypt(/** @type {AesCtrParams} */ (params), /** @type {CryptoKey} */ (a.ctr), /** @type {BufferSource} */ (inner)));
}

// ---- SFrame encryption (sections 4.4.3 and 4.4.4) ----

/**
 * Everything needed to encrypt or decrypt with one KID.
 * @typedef {{suite: Suite, kid: bigint, salt: Uint8Array, aead: Aead}} KeyContext
 */

/** @param {Suite} suite @param {bigint} kid @param {Uint8Array} baseKey @returns {Promise<KeyContext>} */
export async function keyContext(suite, kid, baseKey) {
  const { key, salt } = await deriveSecrets(suite, kid, baseKey);
  return { suite, kid, salt, aead: await importAead(suite, key) };
}

/** The nonce: the salt XORed with CTR. @param {Uint8Array} salt @param {bigint} ctr */
export function nonceFor(salt, ctr) {
  const c = bigEndian(ctr, salt.length);
  return c.map((b, i) => b ^ salt[i]);
}

/**
 * SFrame ciphertext (header ‖ ciphertext ‖ tag); `metadata` is
 * authenticated but not included (the caller sends it in the clear).
 * Each (KID, CTR) must be used once only.
 * @param {KeyContext} ctx @param {bigint} ctr @param {Uint8Array} metadata @param {Uint8Array} plaintext
 */
export async function encrypt(ctx, ctr, metadata, plaintext) {
  const header = encodeHeader(ctx.kid, ctr);
  const ct = await aeadEncrypt(ctx.aead, nonceFor(ctx.salt, ctr), concat(header, metadata), plaintext);
  return concat(header, ct);
}

/**
 * The plaintext of an SFrame ciphertext made with `ctx`'s KID; throws if it
 * is not one or does not authenticate (with `metadata`).
 * @param {KeyContext} ctx @param {Uint8Array} metadata @param {Uint8Array} sframe
 */
export async function decrypt(ctx, metadata, sframe) {
  const h = decodeHeader(sframe);
  if (!h) throw new Error('SFrame: truncated header');
  if (h.kid !== ctx.kid) throw new Error('SFrame: not this key');
  const header = sframe.subarray(0, h.length);
  return aeadDecrypt(ctx.aead, nonceFor(ctx.salt, h.ctr), concat(header, metadata), sframe.subarray(h.length));
}
