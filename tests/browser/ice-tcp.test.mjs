// A browser that may not use UDP (Chromium under the enterprise policy
// that allows WebRTC only over TCP or a proxy,
// `--webrtc-ip-handling-policy=disable_non_proxied_udp`) joins a meeting
// with a Chromium and a Firefox user on UDP: it connects to the server's
// passive ICE-TCP candidate (the media port, over TCP) and everyone decodes
// everyone's video and receives their audio. Where only the web's port is
// open (here: the media port's TCP is taken by something else), the same
// browser reaches media on the HTTPS port, which tells TLS and ICE apart by
// the first byte. And where a firewall drops all UDP to the server,
// Chromium and Firefox as they come meet over TCP.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { launchChromium } from './browsers.mjs';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers, startServer } from './harness.mjs';
import { blockUdp, selectedPair } from './shaping.mjs';

const ctx = serverAndBrowsers();
/** @type {import('./browsers.mjs').Driver} */
let tcpOnly;
before(async () => { tcpOnly = await launchChromium({ args: ['--webrtc-ip-handling-policy=disable_non_proxied_udp'] }); });
after(async () => { await tcpOnly?.close(); });

test('a browser that may not use UDP joins over TCP and media flows both ways', async () => {
  const { server, chromium, firefox } = ctx;
  const room = freshRoom('tcp');
  const link = `${server.origin}/${room}#autojoin=1`;
  const people = [
    await tcpOnly.open(`${link}&name=Ada`),
    await chromium.open(`${link}&name=Bo`),
    await firefox.open(`${link}&name=Fox`),
  ];
  const ids = [];
  for (const p of people) ids.push(await p.joined());
  await everyoneSeesEveryone(people, ids);
  const [ada, bo] = [await selectedPair(people[0]), await selectedPair(people[1])];
  assert.deepEqual([ada.local.protocol, ada.remote.protocol], ['tcp', 'tcp'], 'Ada connects over TCP');
  assert.deepEqual([bo.local.protocol, bo.remote.protocol], ['udp', 'udp'], 'Bo stays on UDP');
  assertCleanPages(people, server.origin);
});

/**
 * A TCP port taken on every interface, as another program would hold it.
 * @returns {Promise<{port: number, close: () => Promise<void>}>}
 */
async function takenPort() {
  const listen = (/** @type {string} */ host) => new Promise((resolve, reject) => {
    const server = net.createServer((c) => c.destroy());
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
  // Both families where the machine has IPv6; IPv4 alone otherwise.
  /** @type {net.Server} */
  const server = await listen('::').catch(() => listen('0.0.0.0'));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  return { port, close: () => new Promise((r) => server.close(() => r(undefined))) };
}

test('where only the web port is open, a browser that may not use UDP gets media over the HTTPS port', async () => {
  const { chromium } = ctx;
  // The media port's TCP is somebody else's: the only TCP candidate left
  // is the HTTPS port, listening on every interface as it does by default.
  const taken = await takenPort();
  const server = await startServer(['--listen', '0.0.0.0:0', '--media-port', String(taken.port)]);
  try {
    assert.match(server.log(), /ICE over TCP is not available on this address/, 'the media port has no TCP');
    const link = `${server.origin}/${freshRoom('tcp443')}#autojoin=1`;
    const people = [await tcpOnly.open(`${link}&name=Ada`), await chromium.open(`${link}&name=Bo`)];
    const ids = [];
    for (const p of people) ids.push(await p.joined());
    await everyoneSeesEveryone(people, ids);
    const ada = await selectedPair(people[0]);
    assert.deepEqual([ada.local.protocol, ada.remote], ['tcp', { protocol: 'tcp', port: server.port }], 'Ada\'s media comes over the HTTPS port');
    // The page itself is still served there, to anyone.
    const page = await people[1].evaluate(async () => (await fetch('/', { cache: 'no-store' })).status);
    assert.equal(page, 200);
    assertCleanPages(people, server.origin);
    for (const p of people) await p.close();
  } finally {
    await server.stop();
    await taken.close();
  }
});

/**
 * A port free for both TCP and UDP on every interface, for a server's
 * media port that a test must know before it starts.
 * @returns {Promise<number>}
 */
async function freeMediaPort() {
  for (;;) {
    const tcp = await takenPort();
    await tcp.close();
    const udp = dgram.createSocket('udp4');
    const free = await new Promise((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(tcp.port, '0.0.0.0', () => resolve(true));
    });
    await new Promise((r) => udp.close(() => r(undefined)));
    if (free) return tcp.port;
  }
}

test('where a firewall drops UDP to the server, Chromium and Firefox users meet over TCP', async () => {
  const { chromium, firefox } = ctx;
  const mediaPort = await freeMediaPort();
  const server = await startServer(['--media-port', String(mediaPort)]);
  const firewall = blockUdp(mediaPort);
  try {
    // Browsers as they come: no policy, UDP first as always.
    const link = `${server.origin}/${freshRoom('noudp')}#autojoin=1`;
    const people = [await firefox.open(`${link}&name=Fox`), await chromium.open(`${link}&name=Bo`)];
    const ids = [];
    for (const p of people) ids.push(await p.joined());
    await everyoneSeesEveryone(people, ids);
    for (const p of people) {
      const pair = await selectedPair(p);
      assert.deepEqual([pair.local.protocol, pair.remote], ['tcp', { protocol: 'tcp', port: mediaPort }], `${p} connects over TCP`);
    }
    assert.ok(firewall.dropped() > 0, 'the browsers did try UDP, and the firewall dropped it');
    assertCleanPages(people, server.origin);
    for (const p of people) await p.close();
  } finally {
    firewall.lift();
    await server.stop();
  }
});
