// The web client's SFrame (web/js/e2ee/sframe.js) against RFC 9605: every
// test vector the RFC publishes (as shipped in the `sframe` crate:
// headers, the AES-CTR + HMAC AEAD, and full SFrame encryption for all five
// cipher suites), then interoperability with that crate both ways through
// the `sframe-interop` tool: frames our JavaScript encrypts decrypt there,
// frames it encrypts decrypt here.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  SUITES, aeadDecrypt, aeadEncrypt, bigEndian, concat, decodeHeader, decrypt, deriveSecrets, encodeHeader, encrypt,
  importAead, keyContext, nonceFor, ratchet,
} from '../../web/js/e2ee/sframe.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** @param {string} h */
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
/** @param {Uint8Array} b */
const toHex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const utf8 = new TextEncoder();

/** The vectors file of the `sframe` crate this workspace locks. */
function vectors() {
  const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--locked'], { cwd: repoRoot, maxBuffer: 64 << 20 }).toString());
  const pkg = meta.packages.find((/** @type {any} */ p) => p.name === 'sframe');
  assert.ok(pkg, 'the sframe crate is a dependency of the workspace');
  const file = path.join(path.dirname(pkg.manifest_path), 'src/test_vectors/test-vectors.json');
  // KID and CTR go up to 2^64 - 1: quote them before JSON.parse rounds them.
  const text = readFileSync(file, 'utf8').replace(/"(kid|ctr)": (\d+)/g, '"$1": "$2"');
  return JSON.parse(text);
}
const V = vectors();

test('header vectors: every KID and CTR encodes and decodes as RFC 9605 says', () => {
  assert.ok(V.header.length > 200);
  for (const v of V.header) {
    const [kid, ctr] = [BigInt(v.kid), BigInt(v.ctr)];
    assert.equal(toHex(encodeHeader(kid, ctr)), v.encoded, `kid ${kid} ctr ${ctr}`);
    const parsed = decodeHeader(concat(hex(v.encoded), Uint8Array.of(0xaa, 0xbb)));
    assert.deepEqual(parsed, { kid, ctr, length: v.encoded.length / 2 });
    assert.equal(decodeHeader(hex(v.encoded).slice(0, -1)), null, 'one byte short is no header');
  }
});

test('AES-CTR + HMAC AEAD vectors', async () => {
  for (const v of V.aes_ctr_hmac) {
    const suite = SUITES[v.cipher_suite];
    const key = hex(v.key);
    assert.equal(toHex(key.slice(0, suite.nka)), v.enc_key);
    assert.equal(toHex(key.slice(suite.nka)), v.auth_key);
    const aead = await importAead(suite, key);
    const ct = await aeadEncrypt(aead, hex(v.nonce), hex(v.aad), hex(v.pt));
    assert.equal(toHex(ct), v.ct, suite.name);
    assert.equal(toHex(await aeadDecrypt(aead, hex(v.nonce), hex(v.aad), ct)), v.pt);
    const forged = ct.slice();
    forged[forged.length - 1] ^= 1;
    await assert.rejects(aeadDecrypt(aead, hex(v.nonce), hex(v.aad), forged), /authentication/);
  }
});

test('SFrame vectors for all five cipher suites: derivation, nonce, AAD, ciphertext', async () => {
  assert.deepEqual(new Set(V.sframe.map((/** @type {any} */ v) => v.cipher_suite)), new Set([1, 2, 3, 4, 5]));
  for (const v of V.sframe) {
    const suite = SUITES[v.cipher_suite];
    const [kid, ctr] = [BigInt(v.kid), BigInt(v.ctr)];
    const labelTail = concat(bigEndian(kid, 8), bigEndian(BigInt(v.cipher_suite), 2));
    assert.equal(toHex(concat(utf8.encode('SFrame 1.0 Secret key '), labelTail)), v.sframe_key_label);
    assert.equal(toHex(concat(utf8.encode('SFrame 1.0 Secret salt '), labelTail)), v.sframe_salt_label);
    const { secret, key, salt } = await deriveSecrets(suite, kid, hex(v.base_key));
    assert.equal(toHex(secret), v.sframe_secret, suite.name);
    assert.equal(toHex(key), v.sframe_key, suite.name);
    assert.equal(toHex(salt), v.sframe_salt, suite.name);
    assert.equal(toHex(nonceFor(salt, ctr)), v.nonce);
    assert.equal(toHex(concat(encodeHeader(kid, ctr), hex(v.metadata))), v.aad);
    const ctx = await keyContext(suite, kid, hex(v.base_key));
    const ct = await encrypt(ctx, ctr, hex(v.metadata), hex(v.pt));
    assert.equal(toHex(ct), v.ct, suite.name);
    assert.equal(toHex(await decrypt(ctx, hex(v.metadata), ct)), v.pt);
    // The metadata is authenticated: other metadata, no plaintext.
    await assert.rejects(decrypt(ctx, utf8.encode('other'), ct));
  }
});

// ---- interoperability with the sframe crate ----

const tool = process.env.SFRAME_INTEROP ?? path.join(repoRoot, 'target/debug/sframe-interop');
/** @type {import('node:child_process').ChildProcessWithoutNullStreams} */
let proc;
/** @type {Array<(line: string) => void>} */
const waiting = [];
before(() => {
  proc = spawn(tool, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  readline.createInterface({ input: proc.stdout }).on('line', (l) => waiting.shift()?.(l));
});
after(() => { proc?.stdin.end(); });

/** One request to the crate. @param {object} req @returns {Promise<any>} */
function rust(req) {
  return new Promise((resolve) => {
    waiting.push((l) => resolve(JSON.parse(l)));
    proc.stdin.write(`${JSON.stringify(req)}\n`);
  });
}

/** Deterministic bytes for a case. @param {number} n @param {number} seed */
function bytes(n, seed) {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

// KIDs and CTRs of every header form, frames of audio to video size, and
// metadata of the lengths A-Confi uses (none, Opus TOC, VP8 delta, VP8 key).
const cases = [];
for (const suite of [1, 2, 3, 4, 5]) {
  for (const [i, [kid, ctr, size, meta]] of /** @type {const} */ ([
    [0n, 0n, 1, 0], [7n, 7n, 80, 1], [8n, 8n, 1200, 3], [50331648n, 255n, 5000, 10],
    [(1n << 53n) + 1n, 65536n, 30000, 10], [(1n << 64n) - 2n, (1n << 40n) + 3n, 160, 1],
  ]).entries()) {
    cases.push({ suite, kid, ctr, pt: bytes(size, suite * 100 + i), metadata: bytes(meta, suite * 100 + i + 50), baseKey: bytes(16 + i, i) });
  }
}

test('frames our JavaScript encrypts decrypt with the sframe crate, for every suite and header form', async () => {
  for (const c of cases) {
    const ctx = await keyContext(SUITES[c.suite], c.kid, c.baseKey);
    const ct = await encrypt(ctx, c.ctr, c.metadata, c.pt);
    const common = { suite: c.suite, kid: String(c.kid), base_key: toHex(c.baseKey), metadata: toHex(c.metadata) };
    const r = await rust({ op: 'decrypt', ...common, ct: toHex(ct) });
    assert.equal(r.pt, toHex(c.pt), `suite ${c.suite} kid ${c.kid}: ${r.error ?? ''}`);
    // A flipped bit anywhere is refused there too.
    const forged = ct.slice();
    forged[Math.floor(forged.length / 2)] ^= 0x10;
    assert.ok((await rust({ op: 'decrypt', ...common, ct: toHex(forged) })).error, 'forgery refused');
  }
});

test('frames the sframe crate encrypts decrypt with our JavaScript, byte for byte the same', async () => {
  for (const c of cases) {
    const r = await rust({
      op: 'encrypt', suite: c.suite, kid: String(c.kid), ctr: String(c.ctr), base_key: toHex(c.baseKey), metadata: toHex(c.metadata), pt: toHex(c.pt),
    });
    assert.ok(r.ct, r.error);
    const ctx = await keyContext(SUITES[c.suite], c.kid, c.baseKey);
    assert.equal(toHex(await decrypt(ctx, c.metadata, hex(r.ct))), toHex(c.pt));
    assert.equal(r.ct, toHex(await encrypt(ctx, c.ctr, c.metadata, c.pt)), 'both produce the same ciphertext');
  }
});

// The sframe crate's ratchet departs from RFC 9605, 5.1 (its label is
// "Sframe 1.0 Ratchet" and it expands to Nk bytes, not "SFrame 1.0 Ratchet"
// and Nh), and the RFC gives no ratchet vectors; so ours is checked against
// the RFC's formula computed by Node's own HKDF, an independent one.
test('the sender-key ratchet follows RFC 9605, 5.1: HKDF-Expand(HKDF-Extract("", k), "SFrame 1.0 Ratchet", Nh)', async () => {
  for (const suite of [1, 4, 5]) {
    const s = SUITES[suite];
    let key = bytes(32, suite);
    for (let step = 0; step < 3; step++) {
      const next = await ratchet(s, key);
      const want = new Uint8Array(hkdfSync(s.hash.replace('-', '').toLowerCase(), key, new Uint8Array(0), 'SFrame 1.0 Ratchet', s.nh));
      assert.equal(toHex(next), toHex(want), `suite ${suite} step ${step}`);
      key = next;
    }
  }
});
