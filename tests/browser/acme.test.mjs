// A certificate from a real ACME CA, in a browser that checks it: Debian's
// pebble (with its test DNS: every name is 127.0.0.1) issues A-Confi's
// certificate for meet.aconfi.test over TLS-ALPN-01; a Chromium that
// trusts pebble's root — and nothing else: certificate errors are errors —
// loads the meeting page for that name and joins a meeting over it.
// (tests/acme.rs covers renewal and the error for a domain that points
// elsewhere.)

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { launchChromium } from './browsers.mjs';
import { freeTcpPort, freshRoom, startServer, until } from './harness.mjs';

const DOMAIN = 'meet.aconfi.test';

/** @param {string} url @param {string} ca @returns {Promise<{status: number, body: string}>} */
const get = (url, ca) => new Promise((resolve, reject) => {
  https.get(url, { ca }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
  }).on('error', reject);
});

test('Chromium trusting only the ACME CA loads the meeting page for the domain and joins', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aconfi-acme-'));
  // pebble's own HTTPS (its API) needs a certificate: one for localhost.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'api.key'), '-out', path.join(dir, 'api.pem'), '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' });
  const [port, api, management, dns] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify({ pebble: {
    listenAddress: `127.0.0.1:${api}`, managementListenAddress: `127.0.0.1:${management}`,
    certificate: path.join(dir, 'api.pem'), privateKey: path.join(dir, 'api.key'),
    httpPort: 5002, tlsPort: port, ocspResponderURL: '', externalAccountBindingRequired: false,
  } }));
  const children = [
    spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dns}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
      '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${await freeTcpPort()}`], { stdio: 'ignore' }),
    spawn('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dns}`],
      { stdio: 'ignore', env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' } }),
  ];
  after(() => { for (const c of children) c.kill('SIGKILL'); });
  const apiCa = execFileSync('cat', [path.join(dir, 'api.pem')], { encoding: 'utf8' });
  const root = await until(async () => {
    const r = await get(`https://127.0.0.1:${management}/roots/0`, apiCa).catch(() => null);
    return r?.status === 200 && r.body;
  }, 'pebble up');

  const server = await startServer(['--listen', `127.0.0.1:${port}`, '--domain', DOMAIN,
    '--acme-directory', `https://localhost:${api}/dir`, '--acme-ca', path.join(dir, 'api.pem')]);
  // Issued once a client that trusts pebble's root accepts it for the name.
  await until(() => new Promise((resolve) => {
    https.get({ host: '127.0.0.1', port, servername: DOMAIN, path: '/', ca: root, headers: { host: DOMAIN } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false));
  }), 'the certificate issued', 60000);

  // A Chromium whose only extra trust is pebble's root.
  const home = path.join(dir, 'home');
  const nssdb = path.join(home, '.pki', 'nssdb');
  execFileSync('mkdir', ['-p', nssdb]);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  writeFileSync(path.join(dir, 'root.pem'), root);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'pebble', '-i', path.join(dir, 'root.pem')]);
  const chromium = await launchChromium({ home, strictTls: true, args: [`--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`] });
  try {
    const room = freshRoom('acme');
    const p = await chromium.open(`https://${DOMAIN}:${port}/${room}#name=Ottilie&autojoin=1`);
    assert.equal(await p.evaluate(() => location.origin), `https://${DOMAIN}:${port}`);
    assert.ok(await p.joined(), 'joined a meeting over the ACME certificate');
    assert.deepEqual(p.errors, []);
    await p.close();
    // The same browser refuses a certificate it has no reason to trust.
    await assert.rejects(chromium.open(`https://localhost:${port}/`), /ERR_CERT/);
  } finally {
    await chromium.close();
    await server.stop();
  }
});
