// Encoded-frame transforms (web/js/frames.js), which end-to-end encryption
// builds on, in both browsers and through every API each one offers:
// Chromium's createEncodedStreams and the standard RTCRtpScriptTransform
// (Firefox has only the latter). A camera and microphone are sent from one
// peer connection to another in the page, every frame passing through the
// worker on both sides; the far side must decode what the worker let
// through.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch } from './browsers.mjs';
import { assertCleanPages, startServer, until } from './harness.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/**
 * In the page: sends fake camera + microphone from one peer connection to
 * another with every frame going through the worker on both ends.
 * @param {string} api
 */
async function loopbackThroughWorker(api) {
  const { FrameTransforms, peerConnectionOptions } = await import('/static/js/frames.js');
  const frames = new FrameTransforms(/** @type {any} */ (api));
  const options = /** @type {RTCConfiguration} */ ({ bundlePolicy: 'max-bundle', ...peerConnectionOptions(/** @type {any} */ (api)) });
  const [a, b] = [new RTCPeerConnection(options), new RTCPeerConnection(options)];
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  for (const track of stream.getTracks()) {
    const { sender } = a.addTransceiver(track, { direction: 'sendonly' });
    frames.attach(sender, { id: `send-${track.kind}`, direction: 'send', kind: track.kind });
  }
  b.ontrack = (ev) => frames.attach(ev.receiver, { id: `receive-${ev.track.kind}`, direction: 'receive', kind: ev.track.kind });
  /** @param {RTCPeerConnection} pc */
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve(undefined);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(undefined); });
  });
  await a.setLocalDescription();
  await gathered(a);
  await b.setRemoteDescription(/** @type {RTCSessionDescription} */ (a.localDescription));
  await b.setLocalDescription();
  await gathered(b);
  await a.setRemoteDescription(/** @type {RTCSessionDescription} */ (b.localDescription));
  /** @type {any} */ (window).frameTest = {
    async status() {
      const received = { framesDecoded: 0, audioPackets: 0 };
      (await b.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') received.framesDecoded += s.framesDecoded ?? 0;
        else received.audioPackets += s.packetsReceived ?? 0;
      });
      return { ...received, counters: await frames.counters() };
    },
  };
}

const cases = [
  { kind: 'chromium', preferred: 'encoded-streams', apis: ['encoded-streams', 'script-transform'] },
  { kind: 'firefox', preferred: 'script-transform', apis: ['script-transform'] },
];

for (const { kind, preferred, apis } of cases) {
  test(`encoded frames pass through the worker in ${kind} (${apis.join(', ')})`, async () => {
    const driver = await launch(/** @type {any} */ (kind));
    try {
      for (const api of apis) {
        const p = await driver.open(`${server.origin}/`);
        const detected = await p.evaluate(async () => (await import('/static/js/frames.js')).frameApi());
        assert.equal(detected, preferred, `${kind} uses ${preferred}`);
        await p.evaluate(loopbackThroughWorker, api);
        const ids = ['send-audio', 'send-video', 'receive-audio', 'receive-video'];
        // The worker must pass frames on for the far side to decode any
        // (a worker that drops them fails this), and it counts each stream.
        await until(async () => {
          const s = await p.evaluate(() => /** @type {any} */ (window).frameTest.status());
          return s.framesDecoded > 30 && s.audioPackets > 50 && ids.every((id) => s.counters[id]?.frames > 30);
        }, `frames decoded through the worker (${kind}, ${api})`);
        assertCleanPages([p], server.origin);
        await p.close();
      }
    } finally {
      await driver.close();
    }
  });
}
