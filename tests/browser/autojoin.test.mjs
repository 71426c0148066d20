// A link with `#autojoin=1` cannot put someone's camera and microphone into
// a meeting without their click (any site could send a returning user into
// a stranger's room, live): at top level it opens the prejoin screen filled
// in, with Join focused, and nothing reaches the server until Join is
// clicked. Inside a frame of a site the operator allowed
// (--frame-ancestors) it still joins by itself. Each browser in turn, the
// other in the meeting already.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { bothBrowsers, freshRoom, startServer, until } from './harness.mjs';

/** Counts the WebSockets a page opens and records what it asks of the camera and microphone, from before its scripts run. */
function countSockets() {
  const w = /** @type {any} */ (window);
  w.socketsOpened = 0;
  w.asked = [];
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { w.asked.push({ audio: Boolean(c?.audio), video: Boolean(c?.video) }); return gum(c); };
  const Native = WebSocket;
  // @ts-ignore: a counting stand-in for the constructor
  window.WebSocket = function (/** @type {string} */ url, /** @type {any} */ protocols) {
    w.socketsOpened += 1;
    return new Native(url, protocols);
  };
  Object.assign(window.WebSocket, Native);
  window.WebSocket.prototype = Native.prototype;
}

/** A site that frames `/frame?src=` (an allowed embedding site). */
async function startSite() {
  const server = http.createServer((req, res) => {
    const src = new URL(req.url ?? '/', 'http://site').searchParams.get('src') ?? '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><iframe id="meeting" allow="camera; microphone" width="800" height="500" src="${src.replace(/"/g, '&quot;')}"></iframe>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    /** @param {string} src */
    page: (src) => `http://127.0.0.1:${port}/frame?src=${encodeURIComponent(src)}`,
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

/** Names on the tiles of `p`'s meeting view. @param {import('./browsers.mjs').Participant} p */
const names = (p) => p.texts('.tile:not(.self) .name');

for (const [kind, other] of /** @type {const} */ ([['chromium', 'firefox'], ['firefox', 'chromium']])) {
  test(`${kind}: #autojoin=1 waits for a click at top level, and joins by itself in an allowed frame`, async () => {
    const room = freshRoom('autojoin');
    const host = await browsers[other].open(`${server.origin}/${room}#autojoin=1&name=Host`);
    await host.joined();

    const guest = await browsers[kind].open(`${server.origin}/${room}#autojoin=1&name=Guest&mic=off`,
      { init: countSockets, click: false });
    await guest.waitFor('#prejoin');
    // Ready to join (Join enabled, the camera previewing), and nothing sent.
    await until(() => guest.evaluate(() => !(/** @type {HTMLButtonElement} */ (document.getElementById('join-now'))).disabled), 'Join ready');
    assert.equal(await guest.focused(), 'join-now', 'Join has the focus: one click, or Enter');
    assert.equal(await guest.evaluate(() => /** @type {HTMLInputElement} */ (document.getElementById('name-input')).value), 'Guest');
    assert.equal(await guest.attr('#pre-mic', 'aria-pressed'), 'false', 'mic=off carried over');
    assert.deepEqual(await guest.evaluate(() => /** @type {any} */ (window).asked), [{ audio: false, video: true }],
      'mic=off: the microphone is not even asked for');
    assert.equal(await guest.evaluate(() => /** @type {any} */ (window).socketsOpened), 0, 'no connection to the server');
    assert.deepEqual(await names(host), [], 'the host sees nobody come');
    // The user's click joins.
    await guest.click('#join-now');
    await guest.joined();
    await until(async () => (await names(host)).join() === 'Guest', 'the host sees the guest once they clicked');
    await guest.close();

    // In the frame of a site the operator allowed, the fragment still joins.
    const outer = await browsers[kind].open(site.page(`${server.origin}/${room}#autojoin=1&name=Framed`));
    await until(async () => (await names(host)).includes('Framed'), 'the framed page joined by itself', 60000);
    await outer.close();
    await host.close();
  });
}
