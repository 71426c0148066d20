// A hostile server for the browser tests: an HTTPS and WebSocket proxy in
// front of a real aconfi that holds a meeting's link and sits in the
// middle of its first two participants (docs/e2ee.md, "a server that holds
// the link"). Pages, media and every other message pass through untouched;
// key exchange messages never reach the server: each participant talks to
// a stand-in of the relay's for the other — the client's own key session
// code, run here with the link's secret — and the relay passes each
// participant's media keys on to the other under its own pairwise keys.
// Media then flows and the relay could read all of it; only the safety
// code can tell. With `hostile: false` it relays key exchange honestly.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { KeySession } from '../../web/js/e2ee/session.js';

/** A stand-in sends no key of its own, only what it passes on. */
class StandIn extends KeySession {
  async deliver() {}
  async rotate() {}
}

/** A self-signed certificate for localhost, made with openssl. */
function certificate() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aconfi-relay-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * @typedef {{client: WebSocket, upstream: WebSocket, you: number|null}} Conn
 */

/**
 * Starts the relay in front of the server at `upstreamPort`. With
 * `redirect`, it answers the first `join` itself, as a lying cluster node
 * would: `nodes` (the URLs given), then `moved` to `url`, and close 4015.
 * @param {{upstreamPort: number, secret: Uint8Array, room: string, hostile: boolean,
 *   redirect?: {nodes: string[], url: string}}} opts
 */
export async function startRelay({ upstreamPort, secret, room, hostile, redirect }) {
  let redirected = false;
  /** @type {Conn[]} in the order they joined */
  const joined = [];
  /** @type {Map<number, KeySession>} the stand-in each participant talks to, by that participant */
  const standInFor = new Map();
  /** @type {{via: number, to: number, kid: bigint, key: Uint8Array}[]} keys to pass on once the stand-in can */
  const toPass = [];
  /** Every media key a stand-in received: what the relay could decrypt with. @type {{from: number, kid: bigint, key: Uint8Array}[]} */
  const stolen = [];

  /** @param {Conn} conn @param {object} msg */
  const toClient = (conn, msg) => conn.client.send(JSON.stringify(msg));

  /** Passes on the keys whose stand-in now holds a pairwise key with their receiver. */
  const pass = () => {
    for (let i = toPass.length - 1; i >= 0; i--) {
      const { via, to, kid, key } = toPass[i];
      const s = /** @type {KeySession} */ (standInFor.get(via));
      if (s.peerState(to).status !== 'authentic') continue;
      toPass.splice(i, 1);
      s.run(() => s.sendKeys([to], [{ kid, key }]));
    }
  };

  /**
   * A stand-in for participant `as`, talking to `victim` (what it sends
   * arrives at the victim as from `as`); keys it receives go on to `as`
   * through the victim's counterpart's stand-in.
   * @param {Conn} victim @param {number} as
   */
  const standIn = (victim, as) => {
    const s = new StandIn({
      secret, room,
      sink: {
        send: (_to, data) => toClient(victim, { type: 'e2ee', from: as, data }),
        sendKey() {},
        receiveKey: (_from, kid, key) => {
          stolen.push({ from: /** @type {number} */ (victim.you), kid, key });
          toPass.push({ via: as, to: as, kid, key });
          pass();
        },
        forget() {}, change: pass, mismatch() {},
      },
    });
    return s;
  };

  /** The first two joined: a (there first) and n. @param {Conn} conn @param {any} msg */
  const onJoined = (conn, msg) => {
    conn.you = msg.you;
    joined.push(conn);
    if (!hostile || joined.length > 2) return;
    if (joined.length === 1) return;
    const [a, n] = joined;
    const ida = /** @type {number} */ (a.you);
    const idn = /** @type {number} */ (n.you);
    // n sees the relay's a, there "already"; a sees the relay's n join.
    const fakeA = standIn(n, ida);
    const fakeN = standIn(a, idn);
    standInFor.set(idn, fakeA);
    standInFor.set(ida, fakeN);
    fakeA.start(ida, []);
    fakeA.joined(idn);
    fakeN.start(idn, [ida]);
  };

  /** @param {WebSocket} client @param {import('node:http').IncomingMessage} req */
  const bridge = (client, req) => {
    const upstream = new WebSocket(`wss://127.0.0.1:${upstreamPort}/ws`, {
      rejectUnauthorized: false,
      servername: 'localhost',
      headers: { origin: req.headers.origin ?? '', host: req.headers.host ?? '' },
    });
    /** @type {Conn} */
    const conn = { client, upstream, you: null };
    /** @type {string[]} */
    const early = [];
    upstream.on('open', () => { for (const m of early.splice(0)) upstream.send(m); });
    upstream.on('message', (data) => {
      const text = String(data);
      const msg = JSON.parse(text);
      if (msg.type === 'joined') onJoined(conn, msg);
      client.send(text);
    });
    client.on('message', (data) => {
      const text = String(data);
      const msg = JSON.parse(text);
      if (msg.type === 'join' && redirect && !redirected) {
        redirected = true;
        client.send(JSON.stringify({ type: 'nodes', urls: redirect.nodes }));
        client.send(JSON.stringify({ type: 'moved', url: redirect.url }));
        client.close(4015, 'moved');
        return;
      }
      const standInHere = conn.you !== null ? standInFor.get(conn.you) : undefined;
      if (msg.type === 'e2ee' && standInHere) {
        // Key exchange never reaches the server: the stand-in answers.
        standInHere.handle(/** @type {number} */ (conn.you), msg.data);
        return;
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else early.push(text);
    });
    const closeBoth = () => { client.close(); upstream.close(); };
    upstream.on('close', closeBoth);
    client.on('close', closeBoth);
    upstream.on('error', closeBoth);
    client.on('error', closeBoth);
  };

  const server = https.createServer(certificate(), (req, res) => {
    const up = https.request({
      host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers: req.headers,
      servername: 'localhost', rejectUnauthorized: false,
    }, (r) => { res.writeHead(r.statusCode ?? 502, r.headers); r.pipe(res); });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => bridge(ws, req)));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    origin: `https://localhost:${port}`,
    /** Media keys the relay holds, as it received them from each participant. */
    stolen,
    async stop() {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
