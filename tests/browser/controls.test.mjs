// The prejoin screen, the toolbar toggles as others see them, and the
// automatic rejoin when the server goes away and comes back — once with a
// Firefox user going through the prejoin screen and a Chromium user
// watching, once the other way round in an end-to-end encrypted meeting
// (a camera turned off and on again under the frame encryption, and keys
// exchanged afresh after the restart).

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { test } from 'node:test';
import { assertCleanPages, bothBrowsers, freshRoom, startServer, until } from './harness.mjs';

/** @returns {Promise<number>} a TCP port free right now */
const freeTcpPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = /** @type {net.AddressInfo} */ (s.address());
    s.close(() => resolve(port));
  });
});
/** @returns {Promise<number>} a UDP port free right now on every interface */
const freeUdpPort = () => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  s.bind(0, '0.0.0.0', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

const drivers = bothBrowsers();

for (const [aliceKind, bobKind, e2ee] of /** @type {const} */ ([['firefox', 'chromium', false], ['chromium', 'firefox', true]])) {
  const what = e2ee ? 'an end-to-end encrypted meeting' : 'a meeting';
  test(`prejoin and toggles in ${aliceKind}, seen from ${bobKind}; both rejoin ${what} after a server restart`, async () => {
    const [tcp, udp] = [await freeTcpPort(), await freeUdpPort()];
    const args = ['--listen', `127.0.0.1:${tcp}`, '--media-port', String(udp)];
    let server = await startServer(args);
    const room = freshRoom('controls');

    const key = e2ee ? '#key=q2Xk0mVw9rT4yB1nC8eLpA' : '';
    // Alice goes through the prejoin screen: types her name, turns the camera off.
    const alice = await drivers[aliceKind].open(`${server.origin}/${room}${key}`);
    await alice.waitFor('#prejoin');
    assert.equal(await alice.isVisible('#prejoin-e2ee'), e2ee, 'the prejoin screen says whether it is encrypted');
    await until(() => alice.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).videoWidth > 0), 'camera preview');
    assert.ok(await alice.count('#camera-select option') >= 1, 'camera choice offered');
    assert.ok(await alice.count('#mic-select option') >= 1, 'microphone choice offered');
    await alice.fill('#name-input', 'Alice');
    await alice.click('#pre-cam');
    assert.equal(await alice.attr('#pre-cam', 'aria-pressed'), 'false');
    await alice.click('#join-now');
    const aliceId = await alice.joined();
    // The name stays in the browser for next time.
    assert.equal(await alice.evaluate(() => localStorage.getItem('aconfi.name')), 'Alice');

    const bob = await drivers[bobKind].open(`${server.origin}/${room}${key ? `${key}&` : '#'}name=Bob&autojoin=1`);
    await bob.joined();
    const aliceTile = `.tile[data-participant="${aliceId}"]`;
    await bob.waitFor(aliceTile, 'attached');
    assert.equal(await bob.text(`${aliceTile} .name`), 'Alice');
    // Camera off: Bob sees her initial instead of video, hears her, decodes no video.
    assert.match(await bob.attr(aliceTile, 'class') ?? '', /video-off/);
    assert.equal(await bob.text(`${aliceTile} .avatar`), 'A');
    const s1 = await until(async () => { const s = await bob.stats(); return s[aliceId]?.audioPacketsReceived > 20 && s; }, 'audio from alice');
    assert.equal(s1[aliceId].framesDecoded, 0);

    // Alice turns the camera on from the toolbar: Bob decodes her video.
    await alice.click('#cam');
    await until(async () => !/video-off/.test(await bob.attr(aliceTile, 'class') ?? ''), 'video-off cleared');
    await until(async () => (await bob.stats())[aliceId]?.framesDecoded > 20, 'alice video decoded');

    // Alice mutes her microphone: Bob sees the indicator.
    await alice.click('#mic');
    assert.equal(await alice.attr('#mic', 'aria-pressed'), 'false');
    await until(async () => /audio-off/.test(await bob.attr(aliceTile, 'class') ?? ''), 'muted indicator');
    assert.ok(await bob.isVisible(`${aliceTile} .muted-icon`));

    // The server goes away: both pages say so; when it is back they rejoin
    // by themselves and see and hear each other again.
    const errorsBefore = [alice.errors.length, bob.errors.length];
    await server.stop();
    // SIGTERM: the server says it is going away (1001), so the pages say it
    // is restarting rather than that the connection was lost.
    for (const p of [alice, bob]) {
      await until(async () => (await p.text('#banner'))?.includes('The server is restarting. Reconnecting'), `restarting banner (${p})`);
    }
    server = await startServer(args);
    // Ids restart with the server, so wait for the state, not a new id.
    const aliceId2 = await alice.joined();
    const bobId2 = await bob.joined();
    await until(async () => (await bob.stats())[aliceId2]?.framesDecoded > 10, 'alice video after rejoin', 60000);
    await until(async () => (await alice.stats())[bobId2]?.framesDecoded > 10, 'bob video after rejoin', 60000);
    assert.ok(!(await alice.isVisible('#banner')));
    // Her mute state survived the rejoin.
    await until(async () => /audio-off/.test(await bob.attr(`.tile[data-participant="${aliceId2}"]`, 'class') ?? ''), 'mute state after rejoin');
    assert.equal(await bob.isVisible('#e2ee-badge'), e2ee, 'still (or still not) end-to-end encrypted');

    // While the server was down, a reconnect attempt may have found
    // nothing listening (the first comes 500 ms after the close): the
    // browsers report that themselves. Anything else is an error of ours.
    const refused = (/** @type {string} */ e) => e.includes(`localhost:${tcp}/ws`)
      && /WebSocket connection to .* failed|can.t establish a connection to the server/.test(e);
    for (const [i, p] of [alice, bob].entries()) {
      p.errors = p.errors.filter((e, n) => n < errorsBefore[i] || !refused(e));
    }
    assertCleanPages([alice, bob], server.origin);
    await alice.close();
    await bob.close();
    await server.stop();
  });
}
