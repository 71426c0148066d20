// End-to-end encrypted meetings in real browsers, Chromium and Firefox
// together, with a str0m participant inside the meeting (aconfi-tap) as the
// server's view: what an operator could capture.
//
// - "Start meeting" makes an encrypted meeting whose link carries the key;
//   everyone with the link decodes everyone; the server forwards SFrame
//   ciphertext whose KIDs belong to the senders; chat is sealed; a page
//   without the key, or with a wrong one, is told and decodes nothing; no
//   WebSocket frame, storage or log holds the secret or a media key.
// - When someone leaves, the others switch to keys the leaver never held.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { after, test } from 'node:test';
import {
  assertCleanPages, assertLogKeepsSecrets, everyoneSeesEveryone, repoRoot, serverAndBrowsers, until,
} from './harness.mjs';
import { MEDIA_SUITE, decodeHeader, decrypt, keyContext } from '../../web/js/e2ee/sframe.js';
import { splitKid } from '../../web/js/e2ee/session.js';
import { toBase64Url } from '../../web/js/e2ee/link.js';

const ctx = serverAndBrowsers();

/**
 * In every page, before its scripts: the test hook that exports keys, a
 * record of every WebSocket frame the page sends, and a count of remote
 * video frames actually shown.
 */
function instrument() {
  const w = /** @type {any} */ (window);
  w.ACONFI_TEST_HOOKS = true;
  w.wsSent = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    w.wsSent.push(String(data));
    return send.call(this, data);
  };
  w.remoteFramesShown = 0;
  const seen = new WeakSet();
  new MutationObserver(() => {
    for (const v of document.querySelectorAll('.tile:not(.self) video')) {
      if (seen.has(v)) continue;
      seen.add(v);
      const count = () => { w.remoteFramesShown += 1; /** @type {any} */ (v).requestVideoFrameCallback(count); };
      /** @type {any} */ (v).requestVideoFrameCallback(count);
    }
  }).observe(document, { childList: true, subtree: true });
}

/** @param {string} h */
const fromHex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
/** @param {Uint8Array} b */
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

/** Taps still running, stopped at the end whatever happened. @type {import('node:child_process').ChildProcess[]} */
const taps = [];
after(() => { for (const t of taps) t.kill(); });

/**
 * Starts the tap in `room`; collects what it prints.
 * @param {number} port @param {string} room
 */
function startTap(port, room) {
  const proc = spawn(path.join(repoRoot, 'target/debug/aconfi-tap'),
    ['--url', `wss://localhost:${port}/ws`, '--room', room, '--e2ee', '--seconds', '120'], { stdio: ['pipe', 'pipe', 'inherit'] });
  taps.push(proc);
  /** @type {{participant: number, kind: string, screen: boolean, data: Uint8Array}[]} */
  const frames = [];
  /** @type {any[]} */
  const messages = [];
  /** @type {number|null} */
  let you = null;
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    if (m.joined) you = m.joined.you;
    if (m.frame) frames.push({ ...m.frame, data: fromHex(m.frame.data) });
    if (m.message) messages.push(m.message);
  });
  return {
    frames,
    messages,
    joined: () => until(async () => you, 'the tap joined'),
    stop: () => new Promise((resolve) => { proc.once('exit', resolve); proc.stdin.end(); }),
  };
}

/**
 * Bytes of a frame the client leaves clear (web/js/frame-worker.js): the
 * Opus TOC byte, the VP8 payload header (10 on keyframes, 3 otherwise).
 * @param {string} kind @param {Uint8Array} data
 */
const clearBytes = (kind, data) => (kind === 'audio' ? 1 : (data[0] & 1) === 0 ? 10 : 3);

/**
 * SFrame key contexts by KID and base key: deriving one takes several
 * WebCrypto calls, and every frame of a sender shares its KID.
 * @type {Map<string, ReturnType<typeof keyContext>>}
 */
const contexts = new Map();
/** @param {bigint} kid @param {Uint8Array} key */
function contextFor(kid, key) {
  const id = `${kid}/${hex(key)}`;
  let c = contexts.get(id);
  if (!c) contexts.set(id, (c = keyContext(MEDIA_SUITE, kid, key)));
  return c;
}

/** @param {import('./browsers.mjs').Participant} p */
const keysOf = (p) => p.evaluate(() => /** @type {any} */ (window).aconfi.e2ee.exportKeys());

/**
 * Every secret a page must never let out: the link's key text and bytes,
 * and every media key it holds, in hex and base64url.
 * @param {string} linkKey @param {any[]} exports
 */
function secretsOf(linkKey, exports) {
  const out = [linkKey];
  for (const e of exports) {
    for (const k of [e.sending, e.next, ...e.received].filter(Boolean)) out.push(k.key, toBase64Url(fromHex(k.key)));
  }
  return out;
}

test('an end-to-end encrypted meeting: decoded by everyone with the link, ciphertext to the server, refused without the key', async () => {
  const { server, chromium, firefox } = ctx;

  // Fiona starts a meeting from the landing page: encrypted by default.
  const fiona = await firefox.open(`${server.origin}/`, { init: instrument });
  assert.equal(await fiona.evaluate(() => /** @type {HTMLInputElement} */ (document.getElementById('e2ee-start')).checked), true);
  await fiona.click('#start');
  await fiona.waitFor('#prejoin');
  const link = await fiona.evaluate(() => location.href);
  const m = /^https:\/\/localhost:\d+\/([a-z0-9-]+)#key=([A-Za-z0-9_-]{22})$/.exec(link);
  assert.ok(m, `a meeting link with its key in the fragment: ${link}`);
  const [, room, linkKey] = m;
  assert.ok(await fiona.isVisible('#prejoin-e2ee'), 'the prejoin screen says it is end-to-end encrypted');
  await fiona.fill('#name-input', 'Fiona');
  await fiona.click('#join-now');

  const alice = await chromium.open(`${link}&name=Alice&autojoin=1`, { init: instrument });
  const bob = await chromium.open(`${link}&name=Bob&autojoin=1`, { init: instrument });
  const people = [fiona, alice, bob];
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  await everyoneSeesEveryone(people, ids);

  // Everyone sees that it is encrypted, the same safety code, nobody
  // without keys.
  for (const p of people) {
    assert.ok(await p.isVisible('#e2ee-badge'), `badge (${p})`);
    await until(async () => (await p.count('.tile.unverified')) === 0, `everyone's keys held (${p})`);
  }
  const codes = await Promise.all(people.map((p) => until(async () => {
    const c = await p.text('#safety-code');
    return /^\d{5} \d{5} \d{5} \d{5}$/.test(c ?? '') && c;
  }, `a safety code (${p})`)));
  assert.deepEqual(new Set(codes).size, 1, `one safety code: ${codes}`);

  // The server's view: frames are SFrame ciphertext under the senders' own
  // keys; only the codec bytes are clear.
  const tap = startTap(server.port, room);
  await tap.joined();
  await until(async () => ids.every((id) => tap.frames.filter((f) => f.participant === id && f.kind === 'video').length >= 10
    && tap.frames.filter((f) => f.participant === id && f.kind === 'audio').length >= 20), 'the tap captured frames from everyone', 60000);
  const sending = new Map();
  for (const [i, p] of people.entries()) sending.set(ids[i], (await keysOf(p)).sending);
  let decrypted = 0;
  for (const f of tap.frames) {
    const n = clearBytes(f.kind, f.data);
    const h = decodeHeader(f.data, n);
    assert.ok(h, 'an SFrame header after the clear bytes');
    assert.equal(splitKid(h.kid).pid, f.participant, 'the KID belongs to the sender');
    const s = sending.get(f.participant);
    if (String(h.kid) !== s.kid) continue;
    const plain = await decrypt(await contextFor(h.kid, fromHex(s.key)), f.data.subarray(0, n), f.data.subarray(n));
    // What the server saw after the header is not the media.
    const body = f.data.subarray(n + h.length, n + h.length + plain.length);
    const same = body.filter((b, i) => b === plain[i]).length;
    assert.ok(same < Math.max(4, plain.length / 16), 'ciphertext, not the frame');
    decrypted += 1;
  }
  assert.ok(decrypted > 50, `frames authenticated with their sender's key: ${decrypted}`);
  const keyframe = tap.frames.find((f) => f.kind === 'video' && (f.data[0] & 1) === 0);
  assert.ok(keyframe, 'a keyframe went by');
  assert.equal(hex(keyframe.data.subarray(3, 6)), '9d012a', 'its VP8 start code is clear, for the SFU');

  // A shared screen is encrypted like the camera and decodes for everyone.
  await alice.click('#share');
  for (const p of [bob, fiona]) {
    await until(async () => (await p.stats())[ids[1]]?.screenFramesDecoded > 2, `alice's screen decoded at ${p}`);
  }
  await until(() => tap.frames.some((f) => f.participant === ids[1] && f.screen), 'the tap saw the screen');
  for (const f of tap.frames.filter((x) => x.screen)) {
    assert.equal(splitKid(/** @type {any} */ (decodeHeader(f.data, clearBytes('video', f.data))).kid).pid, ids[1], 'the screen is sealed too');
  }
  await alice.click('#share');

  // Chat is sealed; a private message reaches only its recipient.
  await alice.click('#side-btn');
  await alice.fill('#chat-input', 'launch code 1234');
  await alice.click('#chat-form button[type=submit]');
  for (const p of [bob, fiona]) {
    await until(async () => (await p.texts('#messages li')).some((t) => t.includes('launch code 1234')), `chat at ${p}`);
  }
  await until(async () => tap.messages.some((x) => x.type === 'chat'), 'the tap got the chat');
  for (const c of tap.messages.filter((x) => x.type === 'chat')) {
    assert.equal(c.sealed, true);
    assert.ok(!c.text.includes('launch') && !c.text.includes('1234'), 'the server relays ciphertext');
  }
  await alice.select('#chat-to', String(ids[0]));
  await alice.fill('#chat-input', 'for Fiona only');
  await alice.click('#chat-form button[type=submit]');
  await until(async () => (await fiona.texts('#messages li')).some((t) => t.includes('for Fiona only')), 'private chat at fiona');
  await alice.select('#chat-to', '');
  await alice.fill('#chat-input', 'public again');
  await alice.click('#chat-form button[type=submit]');
  await until(async () => (await bob.texts('#messages li')).some((t) => t.includes('public again')), 'second public chat at bob');
  assert.ok(!(await bob.texts('#messages li')).some((t) => t.includes('for Fiona')), 'private stays private');
  assert.equal(tap.messages.filter((x) => x.type === 'chat').length, 2, 'the tap never got the private one');

  // Without the key, or with a wrong one: told why, and nothing decoded.
  const noKey = await chromium.open(`${server.origin}/${room}#name=Nokey&autojoin=1`, { init: instrument });
  await noKey.waitFor('#ended');
  assert.match(await noKey.text('#ended-detail') ?? '', /end-to-end encrypted.*full link/);
  // The key may come anywhere in the fragment (here last).
  const wrongKey = await firefox.open(`${server.origin}/${room}#name=Wrong&autojoin=1&key=Zz9yXw8vUu7tSs6rQq5pOo`, { init: instrument });
  await wrongKey.waitFor('#ended');
  assert.match(await wrongKey.text('#ended-detail') ?? '', /does not match/);
  for (const p of [noKey, wrongKey]) {
    assert.equal(await p.evaluate(() => /** @type {any} */ (window).remoteFramesShown), 0, `no picture (${p})`);
    assert.ok(await p.isVisible('#rejoin') === false, 'rejoining the same way cannot help');
  }
  // The meeting went on for the others.
  const before = await bob.stats();
  await until(async () => (await bob.stats())[ids[1]]?.framesDecoded > before[ids[1]].framesDecoded + 20, 'media after the strangers');

  // Nothing sent, stored or logged carries the secret or a media key.
  const exports = await Promise.all(people.map(keysOf));
  const secrets = secretsOf(linkKey, exports);
  for (const p of [...people, noKey, wrongKey]) {
    const sent = /** @type {string[]} */ (await p.evaluate(() => /** @type {any} */ (window).wsSent));
    assert.ok(sent.length > 0);
    for (const frame of sent) for (const s of secrets) assert.ok(!frame.includes(s), `a WebSocket frame of ${p} carries a secret`);
    const stored = await p.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    for (const s of secrets) assert.ok(!stored.includes(s), `storage of ${p} holds a secret`);
  }
  for (const msg of tap.messages) for (const s of secrets) assert.ok(!JSON.stringify(msg).includes(s), 'the server saw a secret');
  await tap.stop();
  assertCleanPages([...people, noKey, wrongKey], server.origin);
  for (const p of [...people, noKey, wrongKey]) await p.close();
  assertLogKeepsSecrets(server.log(), [...secrets, room, 'Fiona', 'Alice', 'launch code']);
});

test('after someone leaves, the others switch to keys the leaver never held, and media goes on', async () => {
  const { server, chromium, firefox } = ctx;
  // Alice starts the meeting from the landing page, in Chromium this time.
  const alice = await chromium.open(`${server.origin}/`, { init: instrument });
  await alice.click('#start');
  await alice.waitFor('#prejoin');
  const link = await alice.evaluate(() => location.href);
  const [, room, linkKey] = /** @type {RegExpExecArray} */ (/\/([a-z0-9-]+)#key=([A-Za-z0-9_-]{22})$/.exec(link));
  await alice.click('#join-now');
  const bob = await firefox.open(`${link}&name=Bob&autojoin=1`, { init: instrument });
  const carol = await chromium.open(`${link}&name=Carol&autojoin=1`, { init: instrument });
  const people = [alice, bob, carol];
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  await everyoneSeesEveryone(people, ids);

  const generation = async (/** @type {import('./browsers.mjs').Participant} */ p) => splitKid(BigInt((await keysOf(p)).sending.kid)).gen;
  const [genA, genB] = [await generation(alice), await generation(bob)];
  const held = await keysOf(carol);
  await carol.click('#leave');
  await carol.waitFor('#ended');
  await until(async () => (await generation(alice)) > genA && (await generation(bob)) > genB, 'new keys after the leave', 30000);

  // What Alice and Bob send now, as the server forwards it.
  const tap = startTap(server.port, room);
  await tap.joined();
  await until(async () => ids.slice(0, 2).every((id) => tap.frames.filter((f) => f.participant === id && f.kind === 'video').length >= 10),
    'frames after the switch', 60000);
  const leaverKeys = [held.sending, held.next, ...held.received].filter(Boolean).map((k) => fromHex(k.key));
  assert.ok(leaverKeys.length >= 3);
  let checked = 0;
  for (const f of tap.frames) {
    const n = clearBytes(f.kind, f.data);
    const h = /** @type {NonNullable<ReturnType<typeof decodeHeader>>} */ (decodeHeader(f.data, n));
    assert.ok(splitKid(h.kid).gen > (f.participant === ids[0] ? genA : genB), 'sent under the new generation');
    for (const key of leaverKeys) {
      await assert.rejects(decrypt(await contextFor(h.kid, key), f.data.subarray(0, n), f.data.subarray(n)),
        'a frame sent after the switch decrypted with a key the leaver held');
    }
    checked += 1;
  }
  assert.ok(checked > 40);
  await tap.stop();
  // Alice and Bob still see and hear each other.
  await everyoneSeesEveryone([alice, bob], ids.slice(0, 2));

  // The link Alice copies carries the key; Carol's "Rejoin" keeps it and
  // brings her back into the encrypted meeting.
  await alice.click('#copy');
  await until(async () => (await alice.text('#banner'))?.includes(`/${room}#key=${linkKey}`), 'copied link with its key');
  await carol.click('#rejoin');
  await carol.waitFor('#prejoin');
  assert.ok(await carol.isVisible('#prejoin-e2ee'));
  await carol.click('#join-now');
  ids[2] = await carol.joined();
  await everyoneSeesEveryone(people, ids);
  assertCleanPages(people, server.origin);
  for (const p of people) await p.close();
});
