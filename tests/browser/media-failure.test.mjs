// A participant whose browser cannot reach the media port is told what is
// wrong, and its retries back off instead of joining and leaving the room
// twice a second. Here Firefox is set to use relays only and has none (a
// policy some networks impose), so it gathers no candidate and ICE fails at
// once — as it does on a machine without a default route.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch } from './browsers.mjs';
import { freshRoom, startServer, until } from './harness.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('./browsers.mjs').Driver} */
let firefox;
before(async () => {
  server = await startServer();
  firefox = await launch('firefox', { prefs: { 'media.peerconnection.ice.relay_only': true } });
});
after(async () => {
  await firefox?.close();
  await server?.stop();
});

/** Times (ms) of the server's "joined" log lines. @param {string} log */
const joinTimes = (log) => [...log.matchAll(/^(\S+Z)\s+INFO joined /gm)].map((m) => Date.parse(m[1]));

test('media that cannot connect is explained, and retries back off', async () => {
  const p = await firefox.open(`${server.origin}/${freshRoom('offline')}#name=Flo&autojoin=1`);
  await until(async () => (await p.text('#banner'))?.includes('cannot reach the server'), 'media failure explained');
  // Each retry is a fresh join; the gaps between them must grow.
  const joins = await until(async () => { const j = joinTimes(server.log()); return j.length >= 4 && j; }, 'four attempts', 60000);
  const gaps = joins.slice(1).map((t, i) => t - joins[i]);
  assert.ok(gaps[2] >= 2 * gaps[0], `gaps between attempts grow: ${gaps.join(', ')} ms`);
  await p.close();
});
