// The prejoin screen, the toolbar toggles as others see them, and the
// automatic rejoin when the server goes away and comes back.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { launchBrowser, myId, openPage, startServer, statsOf, until } from './harness.mjs';

/** @returns {Promise<number>} a TCP port free right now */
const freeTcpPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = /** @type {net.AddressInfo} */ (s.address());
    s.close(() => resolve(port));
  });
});
/** @returns {Promise<number>} a UDP port free right now */
const freeUdpPort = () => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

/** @type {import('playwright-core').Browser} */
let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('prejoin, camera and microphone toggles, and rejoin after a server restart', async () => {
  const [tcp, udp] = [await freeTcpPort(), await freeUdpPort()];
  const args = ['--listen', `127.0.0.1:${tcp}`, '--media-port', String(udp)];
  let server = await startServer(args);
  const room = `controls-${Math.random().toString(36).slice(2, 10)}`;

  // Alice goes through the prejoin screen: types her name, turns the camera off.
  const alice = await openPage(browser, `${server.origin}/${room}`);
  await alice.page.locator('#prejoin').waitFor({ state: 'visible' });
  await until(() => alice.page.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).videoWidth > 0), 'camera preview');
  assert.ok(await alice.page.locator('#camera-select option').count() >= 1, 'camera choice offered');
  assert.ok(await alice.page.locator('#mic-select option').count() >= 1, 'microphone choice offered');
  await alice.page.fill('#name-input', 'Alice');
  await alice.page.click('#pre-cam');
  assert.equal(await alice.page.getAttribute('#pre-cam', 'aria-pressed'), 'false');
  await alice.page.click('#join-now');
  await alice.page.locator('#meeting').waitFor({ state: 'visible' });
  const aliceId = await until(() => myId(alice.page), 'alice joined');
  // The name stays in the browser for next time.
  assert.equal(await alice.page.evaluate(() => localStorage.getItem('aconfi.name')), 'Alice');

  const bob = await openPage(browser, `${server.origin}/${room}#name=Bob&autojoin=1`);
  await until(() => myId(bob.page), 'bob joined');
  const aliceTile = bob.page.locator(`.tile[data-participant="${aliceId}"]`);
  await aliceTile.waitFor();
  assert.equal(await aliceTile.locator('.name').textContent(), 'Alice');
  // Camera off: Bob sees her initial instead of video, hears her, decodes no video.
  assert.match(await aliceTile.getAttribute('class') ?? '', /video-off/);
  assert.equal(await aliceTile.locator('.avatar').textContent(), 'A');
  const s1 = await until(async () => { const s = await statsOf(bob.page); return s[aliceId]?.audioPacketsReceived > 20 && s; }, 'audio from alice');
  assert.equal(s1[aliceId].framesDecoded, 0);

  // Alice turns the camera on from the toolbar: Bob decodes her video.
  await alice.page.click('#cam');
  await until(async () => !/video-off/.test(await aliceTile.getAttribute('class') ?? ''), 'video-off cleared');
  await until(async () => (await statsOf(bob.page))[aliceId]?.framesDecoded > 20, 'alice video decoded');

  // Alice mutes her microphone: Bob sees the indicator.
  await alice.page.click('#mic');
  assert.equal(await alice.page.getAttribute('#mic', 'aria-pressed'), 'false');
  await until(async () => /audio-off/.test(await aliceTile.getAttribute('class') ?? ''), 'muted indicator');
  assert.ok(await aliceTile.locator('.muted-icon').isVisible());

  // The server goes away: both pages say so; when it is back they rejoin
  // by themselves and see and hear each other again.
  await server.stop();
  for (const p of [alice, bob]) {
    await until(async () => (await p.page.locator('#banner').textContent())?.includes('Reconnecting'), 'reconnecting banner');
  }
  server = await startServer(args);
  // Ids restart with the server, so wait for the state, not a new id.
  const rejoined = (/** @type {import('playwright-core').Page} */ page) =>
    page.evaluate(() => /** @type {any} */ (window).aconfi.state === 'joined' && /** @type {any} */ (window).aconfi.you);
  const aliceId2 = await until(() => rejoined(alice.page), 'alice rejoined', 60000);
  const bobId2 = await until(() => rejoined(bob.page), 'bob rejoined', 60000);
  await until(async () => (await statsOf(bob.page))[aliceId2]?.framesDecoded > 10, 'alice video after rejoin', 60000);
  await until(async () => (await statsOf(alice.page))[bobId2]?.framesDecoded > 10, 'bob video after rejoin', 60000);
  assert.ok(await alice.page.locator('#banner').isHidden());
  // Her mute state survived the rejoin.
  await until(async () => /audio-off/.test(await bob.page.locator(`.tile[data-participant="${aliceId2}"]`).getAttribute('class') ?? ''), 'mute state after rejoin');

  for (const p of [alice, bob]) assert.deepEqual(p.errors, []);
  await alice.context.close();
  await bob.context.close();
  await server.stop();
});
