// A meeting embedded in another site (docs/embedding.md), in Chromium and
// Firefox: examples/embed.html, served from another origin (a small HTTP
// server on 127.0.0.1, a secure context), frames the meeting and drives it
// through the postMessage API — join, mute, leave — while a participant in
// the other browser, on the meeting page itself, sees it happen. The
// outer page hears `ready`, `joined`, `participant-joined` with the
// other's id and name, `muted-changed`, `participant-left` and `left`.
// Without --frame-ancestors, the same page gets no meeting in its frame.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { assertCleanPages, bothBrowsers, freshRoom, repoRoot, startServer, until } from './harness.mjs';

const EXAMPLE = readFileSync(path.join(repoRoot, 'examples/embed.html'), 'utf8');
/** The meeting link the example page carries, replaced by the test's. */
const PLACEHOLDER = 'https://meet.example.org/our-weekly-meeting';
assert.ok(EXAMPLE.includes(PLACEHOLDER), 'the example frames its placeholder link');

/**
 * The embedding site: serves the example page, unchanged but for the
 * meeting link (`?meeting=`), at /embed.html, and nothing else.
 */
async function startSite() {
  /** @type {string[]} */
  const served = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://site');
    served.push(url.pathname);
    const meeting = url.searchParams.get('meeting');
    if (url.pathname !== '/embed.html' || !meeting) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    // `?noallow=1`: the same page with its frame's allow= taken out.
    const page = EXAMPLE.replace(PLACEHOLDER, meeting);
    res.end(url.searchParams.get('noallow') === '1' ? page.replace(/\sallow="[^"]*"/, '') : page);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    served,
    /** @param {string} meeting @param {boolean} [noAllow] the frame without allow= */
    page: (meeting, noAllow = false) =>
      `http://127.0.0.1:${port}/embed.html?meeting=${encodeURIComponent(meeting)}${noAllow ? '&noallow=1' : ''}`,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

const browsers = bothBrowsers();
/** @type {Awaited<ReturnType<typeof startSite>>} */
let site;
/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
before(async () => {
  site = await startSite();
  server = await startServer(['--frame-ancestors', site.origin]);
});
after(async () => {
  await server?.stop();
  await site?.close();
});

/**
 * The API's events the outer page logged, oldest first.
 * @param {import('./browsers.mjs').Participant} outer
 * @returns {Promise<Record<string, any>[]>}
 */
const events = async (outer) => (await outer.texts('#log li')).map((t) => JSON.parse(t));

/**
 * Waits for the first logged event of `type` matching `pred`; returns it.
 * @param {import('./browsers.mjs').Participant} outer @param {string} type
 * @param {(e: Record<string, any>) => boolean} [pred]
 */
const event = (outer, type, pred = () => true) =>
  until(async () => (await events(outer)).find((e) => e.type === type && pred(e)), `the ${type} event (${outer.kind})`, 60000);

/**
 * The outer page's checks: it loaded the example page from its own site
 * and, through the frame, the meeting from ours — nothing else from
 * anywhere (so the meeting inside loaded nothing from a third origin) —
 * and had no script errors or dialogs, in the frame either.
 * @param {import('./browsers.mjs').Participant} outer
 */
function assertCleanOuter(outer) {
  const foreign = outer.requests.filter((u) => !u.startsWith(`${site.origin}/embed.html?`) && !u.startsWith(server.origin)
    && !u.startsWith('data:') && !u.startsWith('blob:') && u !== `${site.origin}/favicon.ico`);
  assert.deepEqual(foreign, [], `the embedding page loaded only itself and the meeting (${outer.kind})`);
  assert.deepEqual(outer.errors.filter((e) => !e.includes('favicon.ico')), [], `no script errors (${outer.kind})`);
  assert.deepEqual(outer.dialogs, [], `no dialogs (${outer.kind})`);
}

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  test(`${kind}: the example page joins a meeting in an iframe and hears who comes, mutes and leaves`, async () => {
    const other = kind === 'chromium' ? 'firefox' : 'chromium';
    const room = freshRoom('embed');
    const outer = await browsers[kind].open(site.page(`${server.origin}/${room}`));
    const ready = await event(outer, 'ready');
    assert.equal(ready.screen, 'prejoin');

    // Not commands: ignored. Ours but wrong: answered with `error`, and
    // the page carries on (Join below still works).
    await outer.evaluate((origin) => {
      const frame = /** @type {HTMLIFrameElement} */ (document.getElementById('meeting')).contentWindow;
      for (const junk of ['join', null, 42, [1], { type: 'join' }, { aconfi: 2, type: 'join' }, { aconfi: 1 },
        { aconfi: 1, type: 'self-destruct' }, { aconfi: 1, type: 'join', name: 5 }, { aconfi: 1, type: 'mute' }]) {
        frame?.postMessage(junk, origin);
      }
    }, server.origin);
    await event(outer, 'error', (e) => e.command === 'mute');
    assert.deepEqual((await events(outer)).filter((e) => e.type === 'error').map((e) => e.command),
      ['self-destruct', 'join', 'mute'], 'the three bad commands are refused, in order; the rest ignored');

    // join → joined, with camera and microphone: the frame got them
    // through allow= and A-Confi's Permissions-Policy.
    await outer.fill('#name', 'Embedded Em');
    await outer.click('#join');
    const joined = await event(outer, 'joined');
    assert.equal(typeof joined.id, 'number');
    assert.equal(joined.name, 'Embedded Em');
    assert.equal(joined.audioMuted, false, 'the framed page has a microphone');
    assert.equal(joined.videoMuted, false, 'the framed page has a camera');

    // Someone joins on the meeting page itself: the outer page hears it.
    const dee = await browsers[other].open(`${server.origin}/${room}#autojoin=1&name=Direct%20Dee`);
    const deeId = await dee.joined();
    const came = await event(outer, 'participant-joined', (e) => e.id === deeId);
    assert.equal(came.name, 'Direct Dee');
    // And sees and hears the embedded participant.
    await until(async () => {
      const s = (await dee.stats())[joined.id];
      return s?.framesDecoded > 0 && s?.audioPacketsReceived > 0;
    }, `${other} decodes the embedded ${kind}'s camera and microphone`, 60000);

    // mute: the other sees the embedded one muted; the outer page is told.
    const tile = `.tile[data-participant="${joined.id}"]`;
    assert.doesNotMatch((await dee.attr(tile, 'class')) ?? '', /audio-off/);
    await outer.click('[data-command="mute"]');
    await until(async () => /audio-off/.test((await dee.attr(tile, 'class')) ?? ''), `${other} sees the embedded ${kind} muted`);
    const muted = await event(outer, 'muted-changed');
    assert.deepEqual({ audioMuted: muted.audioMuted, videoMuted: muted.videoMuted }, { audioMuted: true, videoMuted: false });

    // The other leaves: participant-left, with the same id and name.
    assertCleanPages([dee], server.origin);
    await dee.close();
    const went = await event(outer, 'participant-left');
    assert.deepEqual({ id: went.id, name: went.name }, { id: deeId, name: 'Direct Dee' });

    // leave → left.
    await outer.click('[data-command="leave"]');
    const left = await event(outer, 'left');
    assert.equal(left.reason, 'left');
    const types = (await events(outer)).map((e) => e.type).filter((t) => t !== 'error');
    assert.deepEqual(types, ['ready', 'joined', 'participant-joined', 'muted-changed', 'participant-left', 'left'],
      'every event once, in order');
    assertCleanOuter(outer);
    await outer.close();
  });

  test(`${kind}: without --frame-ancestors another site's frame gets no meeting`, async () => {
    const plain = await startServer();
    try {
      // The policy as the server sends it.
      const csp = await new Promise((resolve, reject) => {
        https.get(`${plain.origin}/some-room`, { rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(String(res.headers['content-security-policy']));
        }).on('error', reject);
      });
      assert.match(/** @type {string} */ (csp), /(^|; )frame-ancestors 'self'(;|$)/);
      // The browser enforces it: the frame ends on the browser's own error
      // page (Chromium: chrome-error://, Firefox: about:neterror?e=cspBlocked),
      // never the meeting page, and the outer page hears nothing.
      const outer = await browsers[kind].open(site.page(`${plain.origin}/${freshRoom('embed')}`));
      const blocked = await until(async () => outer.page.frames().map((/** @type {any} */ f) => f.url())
        .find((/** @type {string} */ u) => u.startsWith('chrome-error:') || u.startsWith('about:neterror')),
      `the frame's error page (${kind})`);
      if (kind === 'firefox') assert.match(blocked, /e=cspBlocked/);
      assert.ok(outer.errors.some((e) => /frame-ancestors/.test(e)), `the browser says why (${kind}): ${outer.errors}`);
      assert.deepEqual(await events(outer), [], 'no event from a blocked frame');
      await outer.close();
    } finally {
      await plain.stop();
    }
  });
}

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  test(`${kind}: a frame without allow= gets no camera and no microphone`, async () => {
    const other = kind === 'chromium' ? 'firefox' : 'chromium';
    const room = freshRoom('noallow');
    const dee = await browsers[other].open(`${server.origin}/${room}#autojoin=1&name=Direct%20Dee`);
    await dee.joined();
    const outer = await browsers[kind].open(site.page(`${server.origin}/${room}`, true));
    assert.doesNotMatch(await outer.evaluate(() => document.getElementById('meeting')?.outerHTML ?? ''), /allow=/);
    await event(outer, 'ready');
    await outer.fill('#name', 'Unallowed Una');
    await outer.click('#join');
    const joined = await event(outer, 'joined');
    // The browser refused it the devices: it joins without them, and the
    // other sees it muted with its camera off.
    assert.equal(joined.audioMuted, true, 'no microphone without allow=');
    assert.equal(joined.videoMuted, true, 'no camera without allow=');
    const tile = `.tile[data-participant="${joined.id}"]`;
    await until(async () => /audio-off/.test((await dee.attr(tile, 'class')) ?? '') && /video-off/.test((await dee.attr(tile, 'class')) ?? ''),
      `${other} sees it without microphone and camera`);
    for (const p of [outer, dee]) await p.close();
  });
}
