// Two nodes of a cluster (the real binary, twice) sharing a real Redis from
// Debian: a Chromium user opens a meeting link on node A, a Firefox user the
// same link on node B; B sends Firefox on to A, the room's home, and both
// decode each other. Redis holds one lease for the room, under a key that
// is not its name. Then node A is killed (SIGKILL, no goodbye): both
// browsers find node B by themselves and meet again there, and the time it
// took is written down (docs/scaling.md quotes it).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  artifacts, assertLogKeepsSecrets, bothBrowsers, everyoneSeesEveryone, freshRoom, startServer, until,
} from './harness.mjs';

/** @returns {Promise<number>} a TCP port free right now */
const freeTcpPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = /** @type {net.AddressInfo} */ (s.address());
    s.close(() => resolve(port));
  });
});

/** A redis-server of its own on a free port, persisting nothing; resolves once it accepts connections. */
async function startRedis() {
  const port = await freeTcpPort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', os.tmpdir()], { stdio: ['ignore', 'pipe', 'pipe'] });
  after(() => { proc.kill('SIGKILL'); });
  let out = '';
  await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { out += d; if (out.includes('Ready to accept connections')) resolve(undefined); });
    proc.on('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  /** Every key and its value. @returns {[string, string][]} */
  const dump = () => execFileSync('redis-cli', ['-p', String(port), '--scan'], { encoding: 'utf8' })
    .split('\n').filter(Boolean)
    .map((k) => [k, execFileSync('redis-cli', ['-p', String(port), 'GET', k], { encoding: 'utf8' }).trim()]);
  return { url: `redis://127.0.0.1:${port}/`, dump };
}

/** The Content-Security-Policy a node's meeting page is served with. @param {string} origin */
const pagePolicy = (origin) => new Promise((resolve, reject) => {
  // The node's certificate is made in memory at its start: not checked here.
  https.get(`${origin}/some-room`, { rejectUnauthorized: false }, (res) => {
    res.resume();
    resolve(String(res.headers['content-security-policy'] ?? ''));
  }).on('error', reject);
});

const drivers = bothBrowsers();

test('a meeting opened through two nodes is one meeting, and moves to the other node when its home dies', async () => {
  const redis = await startRedis();
  const secret = 'a cluster secret for the browser test';
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const port = await freeTcpPort();
    nodes.push(await startServer(['--listen', `127.0.0.1:${port}`, '--public-url', `https://localhost:${port}`,
      '--redis-url', redis.url, '--cluster-secret', secret, '--drain-seconds', '0']));
  }
  const [a, b] = nodes;
  // Each node serves pages that may connect to the other once it has seen it alive.
  await until(async () => (await pagePolicy(a.origin)).includes(b.origin) && (await pagePolicy(b.origin)).includes(a.origin),
    'the nodes see each other');

  const room = freshRoom('cluster');
  const ada = await drivers.chromium.open(`${a.origin}/${room}#name=Adalind&autojoin=1`);
  const adaId = await ada.joined();
  const bo = await drivers.firefox.open(`${b.origin}/${room}#name=Borislav&autojoin=1`);
  const boId = await bo.joined();
  const wsOf = (/** @type {import('./browsers.mjs').Participant} */ p) => p.evaluate(() => /** @type {any} */ (window).aconfi.ws.url);
  assert.equal(await wsOf(ada), `wss://localhost:${a.port}/ws`);
  assert.equal(await wsOf(bo), `wss://localhost:${a.port}/ws`, 'Firefox was sent on to the home node, its page stayed');
  assert.equal(await bo.evaluate(() => location.origin), b.origin);
  await everyoneSeesEveryone([ada, bo], [adaId, boId]);

  const keys = redis.dump();
  const leases = keys.filter(([k]) => k.startsWith('aconfi:room:'));
  assert.deepEqual(leases.map(([, v]) => v), [a.origin], 'one lease, naming node A');
  assert.ok(keys.every(([k, v]) => !k.includes(room) && !v.includes(room)), `no room name in Redis: ${JSON.stringify(keys)}`);

  // Node A dies without a word.
  const killed = Date.now();
  a.proc.kill('SIGKILL');
  const onB = `wss://localhost:${b.port}/ws`;
  const [adaId2, boId2] = await Promise.all([ada, bo].map((p) => until(async () => {
    const m = await p.evaluate(() => { const s = /** @type {any} */ (window).aconfi; return { state: s.state, you: s.you, url: s.ws?.url }; });
    return m.state === 'joined' && m.url === onB && m.you;
  }, `${p} back on node B`, 60000)));
  const seconds = (Date.now() - killed) / 1000;
  writeFileSync(path.join(artifacts, 'cluster-failover.txt'), `both rejoined on node B ${seconds.toFixed(1)} s after node A was killed\n`);
  console.log(`both rejoined on node B ${seconds.toFixed(1)} s after node A was killed`);
  // What the issue asks: back within about ten seconds (node A's
  // announcement lives 3 s; the clients' back-off adds the rest).
  assert.ok(seconds < 15, `rejoined after ${seconds} s`);
  await everyoneSeesEveryone([ada, bo], [adaId2, boId2]);
  await until(async () => redis.dump().some(([k, v]) => k.startsWith('aconfi:room:') && v === b.origin), 'node B holds the lease');

  // Nothing from anywhere but the two nodes; no script errors.
  for (const p of [ada, bo]) {
    const foreign = p.requests.filter((u) => ![a.origin, b.origin, 'data:', 'blob:'].some((o) => u.startsWith(o))
      && !u.startsWith(`wss://localhost:${a.port}/`) && !u.startsWith(`${onB.slice(0, -3)}/`));
    assert.deepEqual(foreign, [], `nothing loaded from elsewhere (${p})`);
    assert.deepEqual(p.errors.filter((e) => !/WebSocket|wss:/.test(e)), [], `no script errors (${p})`);
  }
  for (const p of [ada, bo]) await p.close();
  for (const n of nodes) assertLogKeepsSecrets(n.log(), ['Adalind', 'Borislav', room, secret]);
  await b.stop();
});
