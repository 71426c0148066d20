// Two nodes of a cluster (the real binary, twice) sharing a real Redis from
// Debian: a Chromium user opens a meeting link on node A, a Firefox user the
// same link on node B; B sends Firefox on to A, the room's home, and both
// decode each other. Redis holds one lease for the room, under a key that
// is not its name. Then node A is killed (SIGKILL, no goodbye): both
// browsers find node B by themselves and meet again there, and the time it
// took is written down (docs/scaling.md quotes it). And a node that started
// after a page was loaded is not in that page's Content-Security-Policy:
// sent there, the page reopens the meeting on that node's own page once
// its user confirms (and joins there with a click). Last,
// both nodes behind one name (nginx's TCP proxy, as
// examples/cluster/nginx-stream.conf): both users open the balancer's link,
// the home node is killed, and they meet again through the same link.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import {
  CLUSTER_SECRET as secret, artifacts, assertLogKeepsSecrets, bothBrowsers, everyoneSeesEveryone, freeTcpPort, freshRoom,
  startNode, startRedis, until,
} from './harness.mjs';

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
  const nodes = [await startNode(redis), await startNode(redis)];
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
  assert.deepEqual(leases.map(([, v]) => v.split(' ')[0]), [a.origin], 'one lease, naming node A');
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
  await until(async () => redis.dump().some(([k, v]) => k.startsWith('aconfi:room:') && v.startsWith(`${b.origin} `)), 'node B holds the lease');

  // Nothing from anywhere but the two nodes; no script errors.
  for (const p of [ada, bo]) {
    const foreign = p.requests.filter((u) => ![a.origin, b.origin, 'data:', 'blob:'].some((o) => u.startsWith(o))
      && !u.startsWith(`wss://localhost:${a.port}/`) && !u.startsWith(`${onB.slice(0, -3)}/`));
    assert.deepEqual(foreign, [], `nothing loaded from elsewhere (${p})`);
    // The one error expected: the browser's own report that node A, killed,
    // refused its WebSocket while the page came back.
    const deadNode = `wss://localhost:${a.port}/ws`;
    assert.deepEqual(p.errors.filter((e) => !e.includes(deadNode)), [], `no other script errors (${p})`);
  }
  for (const p of [ada, bo]) await p.close();
  for (const n of nodes) assertLogKeepsSecrets(n.log(), ['Adalind', 'Borislav', room, secret]);
  await b.stop();
});

test('sent to a node that started after the page loaded, the meeting reopens on that node\'s page', async () => {
  const redis = await startRedis();
  const a = await startNode(redis);
  const room = freshRoom('newnode');
  // Both users wait on the prejoin screen of node A, loaded before node C exists.
  const people = [];
  for (const [kind, name] of /** @type {const} */ ([['chromium', 'Cordelia'], ['firefox', 'Dragomir']])) {
    const p = await drivers[kind].open(`${a.origin}/${room}#name=${name}`);
    await p.waitFor('#prejoin');
    people.push(p);
  }
  const c = await startNode(redis);
  await until(async () => (await pagePolicy(a.origin)).includes(c.origin), 'node A sees node C');
  // Someone in another meeting on A: A is busier than C, so the new room
  // goes to C.
  const busy = await drivers.chromium.open(`${a.origin}/${freshRoom('elsewhere')}#name=Someone&autojoin=1`);
  await busy.joined();
  const ids = [];
  for (const p of people) {
    await p.click('#join-now');
    // The page may not reach node C: it asks before opening the meeting
    // on C's own page, and stays where it is until the user says so.
    await p.waitFor('#confirm-dialog', 'visible', 60000);
    assert.match(await p.text('#confirm-text') ?? '', new RegExp(c.origin.replace(/[.]/g, '\\.')));
    assert.equal(await p.evaluate(() => location.origin), a.origin, `${p} still on node A's page`);
    await p.click('#confirm-ok');
    // There the prejoin screen comes up filled in, and waits for a click.
    await until(async () => (await p.evaluate(() => location.origin)) === c.origin, `${p} on node C's page`, 30000);
    await p.clickJoinIfAsked();
    ids.push(await until(async () => {
      const s = await p.evaluate(() => ({ origin: location.origin, state: /** @type {any} */ (window).aconfi?.state, you: /** @type {any} */ (window).aconfi?.you }));
      return s.origin === c.origin && s.state === 'joined' && s.you;
    }, `${p} joined on node C's page`, 60000));
  }
  await everyoneSeesEveryone(people, ids);
  // The name came along in the fragment.
  assert.deepEqual(await people[1].texts('.tile:not(.self) .name'), ['Cordelia']);
  for (const p of [...people, busy]) await p.close();
  for (const n of [a, c]) assertLogKeepsSecrets(n.log(), ['Cordelia', 'Dragomir', room, secret]);
  await a.stop();
  await c.stop();
});

/**
 * nginx's TCP proxy on `port` in front of `upstreams` (TLS passes through),
 * as examples/cluster/nginx-stream.conf; resolves once it accepts
 * connections.
 * @param {number} port @param {number[]} upstreams
 */
async function startBalancer(port, upstreams) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aconfi-lb-'));
  writeFileSync(path.join(dir, 'nginx.conf'), `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
stream {
  upstream aconfi_nodes {
${upstreams.map((u) => `    server 127.0.0.1:${u} max_fails=1 fail_timeout=5s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    proxy_pass aconfi_nodes;
    proxy_connect_timeout 2s;
    proxy_next_upstream on;
  }
}
`);
  const proc = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  await until(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }), 'nginx listening');
  return proc;
}

test('behind a balancer: both open its link, the home node is killed, both meet again through the same link', async () => {
  const redis = await startRedis();
  const [lbPort, portA, portB] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const lb = `https://localhost:${lbPort}`;
  const nodes = [await startNode(redis, ['--origin', lb], portA), await startNode(redis, ['--origin', lb], portB)];
  const balancer = await startBalancer(lbPort, [portA, portB]);
  try {
    await until(async () => (await pagePolicy(nodes[0].origin)).includes(nodes[1].origin)
      && (await pagePolicy(nodes[1].origin)).includes(nodes[0].origin), 'the nodes see each other');
    const room = freshRoom('balanced');
    const people = [await drivers.chromium.open(`${lb}/${room}#name=Evander&autojoin=1`)];
    const ids = [await people[0].joined()];
    people.push(await drivers.firefox.open(`${lb}/${room}#name=Philippa&autojoin=1`));
    ids.push(await people[1].joined());
    await everyoneSeesEveryone(people, ids);
    // The room lives on one node; whichever it is, kill it.
    const leases = redis.dump().filter(([k]) => k.startsWith('aconfi:room:'));
    assert.equal(leases.length, 1);
    const home = nodes.find((n) => leases[0][1].startsWith(`${n.origin} `));
    const other = nodes.find((n) => n !== home);
    assert.ok(home && other, `the lease names a node: ${leases[0][1]}`);
    // Each page's current connection, to tell the next one from it.
    for (const p of people) await p.evaluate(() => { /** @type {any} */ (window).before = /** @type {any} */ (window).aconfi.ws; });
    home.proc.kill('SIGKILL');
    const again = await Promise.all(people.map((p) => until(async () => {
      const m = await p.evaluate(() => {
        const w = /** @type {any} */ (window);
        return { state: w.aconfi.state, you: w.aconfi.you, fresh: w.aconfi.ws !== w.before };
      });
      return m.fresh && m.state === 'joined' && m.you;
    }, `${p} joined again`, 60000)));
    await everyoneSeesEveryone(people, again);
    await until(async () => redis.dump().some(([k, v]) => k.startsWith('aconfi:room:') && v.startsWith(`${other.origin} `)), 'the other node holds the lease');
    for (const p of people) assert.equal(await p.evaluate(() => location.origin), lb, `${p} stayed on the balancer's page`);
    for (const p of people) await p.close();
    for (const n of nodes) assertLogKeepsSecrets(n.log(), ['Evander', 'Philippa', room, secret]);
    await other.stop();
  } finally {
    balancer.kill('SIGKILL');
  }
});
