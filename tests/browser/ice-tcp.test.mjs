// A browser that may not use UDP (Chromium under the enterprise policy
// that allows WebRTC only over TCP or a proxy,
// `--webrtc-ip-handling-policy=disable_non_proxied_udp`) joins a meeting
// with a Chromium and a Firefox user on UDP: it connects to the server's
// passive ICE-TCP candidate (the media port, over TCP) and everyone decodes
// everyone's video and receives their audio.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchChromium } from './browsers.mjs';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers } from './harness.mjs';

const ctx = serverAndBrowsers();
/** @type {import('./browsers.mjs').Driver} */
let tcpOnly;
before(async () => { tcpOnly = await launchChromium({ args: ['--webrtc-ip-handling-policy=disable_non_proxied_udp'] }); });
after(async () => { await tcpOnly?.close(); });

/**
 * The transport protocol of the page's selected candidate pair, on its
 * side and the server's.
 * @param {import('./browsers.mjs').Participant} p
 */
function selectedPair(p) {
  return p.evaluate(async () => {
    const stats = await /** @type {any} */ (window).aconfi.pc.getStats();
    let pairId = null;
    stats.forEach((/** @type {any} */ s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = pairId ? stats.get(pairId) : null;
    if (!pair) return null;
    return { local: stats.get(pair.localCandidateId)?.protocol, remote: stats.get(pair.remoteCandidateId)?.protocol };
  });
}

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
  assert.deepEqual(await selectedPair(people[0]), { local: 'tcp', remote: 'tcp' }, 'Ada connects over TCP');
  assert.deepEqual(await selectedPair(people[1]), { local: 'udp', remote: 'udp' }, 'Bo stays on UDP');
  assertCleanPages(people, server.origin);
});
