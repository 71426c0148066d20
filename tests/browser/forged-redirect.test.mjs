// A `moved` that sends a page somewhere its own server never named is not
// followed, and an end-to-end encrypted meeting's key goes to another
// origin's page only when its user says so (docs/security.md, "A
// cluster's directory"). A relay in front of the server plays the lying
// node: it answers the first `join` itself. Chromium and Firefox.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freeTcpPort, freshRoom, serverAndBrowsers, until } from './harness.mjs';
import { fromBase64Url, newSecret } from '../../web/js/e2ee/link.js';
import { startRelay } from './hostile-relay.mjs';

const ctx = serverAndBrowsers();

/** Records every WebSocket URL a page opens, from before its scripts run. */
function recordSockets() {
  const w = /** @type {any} */ (window);
  w.socketUrls = [];
  const Native = WebSocket;
  // @ts-ignore: a recording stand-in for the constructor
  window.WebSocket = function (/** @type {string} */ url, /** @type {any} */ protocols) {
    w.socketUrls.push(String(url));
    return new Native(url, protocols);
  };
  Object.assign(window.WebSocket, Native);
  window.WebSocket.prototype = Native.prototype;
}

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  test(`${kind}: a moved to a place the page's server never named is not followed`, async () => {
    const key = newSecret();
    const room = freshRoom('forged-moved');
    const evil = `https://localhost:${await freeTcpPort()}`;
    const relay = await startRelay({
      upstreamPort: ctx.server.port, secret: /** @type {Uint8Array} */ (fromBase64Url(key)), room, hostile: false,
      redirect: { nodes: [], url: evil },
    });
    try {
      const p = await ctx[kind].open(`${relay.origin}/${room}#key=${key}&name=Mo&autojoin=1`, { init: recordSockets });
      // It comes back to its own server, which this time lets it in.
      await p.joined();
      const urls = await p.evaluate(() => /** @type {any} */ (window).socketUrls);
      assert.ok(urls.length >= 2, `it tried again: ${urls}`);
      assert.ok(urls.every((/** @type {string} */ u) => u.startsWith(relay.origin.replace('https', 'wss'))), `only its own server: ${urls}`);
      assert.equal(await p.evaluate(() => location.origin), relay.origin);
      await p.close();
    } finally {
      await relay.stop();
    }
  });

  test(`${kind}: the key goes to another origin's page only when the user says so`, async () => {
    const key = newSecret();
    const room = freshRoom('forged-relocate');
    // A node the page may not connect to (not in its policy): following
    // the move means opening the meeting on that origin's page, key and all.
    const elsewhere = `https://localhost:${await freeTcpPort()}`;
    const relay = await startRelay({
      upstreamPort: ctx.server.port, secret: /** @type {Uint8Array} */ (fromBase64Url(key)), room, hostile: false,
      redirect: { nodes: [elsewhere], url: elsewhere },
    });
    try {
      const p = await ctx[kind].open(`${relay.origin}/${room}#key=${key}&name=Mo&autojoin=1`);
      await p.waitFor('#confirm-dialog', 'visible', 30000);
      const question = await p.text('#confirm-text') ?? '';
      assert.ok(question.includes(elsewhere) && /key/.test(question), `the user is asked, told of the key: ${question}`);
      assert.equal(await p.evaluate(() => location.origin), relay.origin, 'nothing opened before the answer');
      await p.click('#confirm-cancel');
      await p.waitFor('#ended');
      assert.match(await p.text('#ended-detail') ?? '', new RegExp(elsewhere.replace(/[.]/g, '\\.')));
      assert.equal(await p.evaluate(() => location.origin), relay.origin, 'declined: the page stays, the key with it');
      assert.ok(!p.requests.some((u) => u.startsWith(elsewhere)), 'nothing requested from the other origin');
      await p.close();
    } finally {
      await relay.stop();
    }
  });
}
