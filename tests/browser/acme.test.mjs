// A certificate from a real ACME CA, in browsers that check it: Debian's
// pebble (with its test DNS: every name is 127.0.0.1) issues A-Confi's
// certificate for meet.aconfi.test over TLS-ALPN-01; a Chromium and a
// Firefox that trust pebble's root — each in a certificate store of its
// own, and certificate errors are errors — load the meeting page for that
// name and join a meeting over it, and refuse the same server under a name
// the certificate is not for.
// (tests/acme.rs covers renewal and the error for a domain that points
// elsewhere.)

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium, launchFirefox } from './browsers.mjs';
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

let dir = '';
let root = '';
let port = 0;
/** @type {number} */ let api;
/** @type {number} */ let management;
/** @type {number} */ let dns;
/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('node:child_process').ChildProcess[]} pebble and its DNS */
let children = [];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'aconfi-acme-'));
  // pebble's own HTTPS (its API) needs a certificate: one for localhost.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'api.key'), '-out', path.join(dir, 'api.pem'), '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' });
  [port, api, management, dns] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify({ pebble: {
    listenAddress: `127.0.0.1:${api}`, managementListenAddress: `127.0.0.1:${management}`,
    certificate: path.join(dir, 'api.pem'), privateKey: path.join(dir, 'api.key'),
    httpPort: 5002, tlsPort: port, ocspResponderURL: '', externalAccountBindingRequired: false,
  } }));
  children = [
    spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dns}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
      '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${await freeTcpPort()}`], { stdio: 'ignore' }),
    spawn('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dns}`],
      { stdio: 'ignore', env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' } }),
  ];
  const apiCa = readFileSync(path.join(dir, 'api.pem'), 'utf8');
  root = await until(async () => {
    const r = await get(`https://127.0.0.1:${management}/roots/0`, apiCa).catch(() => null);
    return r?.status === 200 && r.body;
  }, 'pebble up');

  server = await startServer(['--listen', `127.0.0.1:${port}`, '--domain', DOMAIN,
    '--acme-directory', `https://localhost:${api}/dir`, '--acme-ca', path.join(dir, 'api.pem')]);
  // Issued once a client that trusts pebble's root accepts it for the name.
  await until(() => new Promise((resolve) => {
    https.get({ host: '127.0.0.1', port, servername: DOMAIN, path: '/', ca: root, headers: { host: DOMAIN } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false));
  }), 'the certificate issued', 60000);
});
after(async () => {
  await server?.stop();
  for (const c of children) c.kill('SIGKILL');
});

/** A certificate store holding pebble's root and nothing else, made in `store`. @param {string} store */
function trustPebble(store) {
  execFileSync('mkdir', ['-p', store]);
  execFileSync('certutil', ['-d', `sql:${store}`, '-N', '--empty-password']);
  writeFileSync(path.join(dir, 'root.pem'), root);
  execFileSync('certutil', ['-d', `sql:${store}`, '-A', '-t', 'C,,', '-n', 'pebble', '-i', path.join(dir, 'root.pem')]);
}

/** @param {import('./browsers.mjs').Driver} browser */
async function joinsOverTheCertificate(browser) {
  const room = freshRoom('acme');
  const p = await browser.open(`https://${DOMAIN}:${port}/${room}#name=Ottilie&autojoin=1`);
  assert.equal(await p.evaluate(() => location.origin), `https://${DOMAIN}:${port}`);
  assert.ok(await p.joined(), 'joined a meeting over the ACME certificate');
  assert.deepEqual(p.errors, []);
  await p.close();
  // The same browser refuses a certificate it has no reason to trust.
  await assert.rejects(browser.open(`https://localhost:${port}/`), /ERR_CERT|SSL_ERROR|SEC_ERROR|MOZILLA_PKIX|Certificate/i);
}

test('Chromium trusting only the ACME CA loads the meeting page for the domain and joins', async () => {
  const home = path.join(dir, 'chromium-home');
  trustPebble(path.join(home, '.pki', 'nssdb'));
  const chromium = await launchChromium({ home, strictTls: true, args: [`--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`] });
  try {
    await joinsOverTheCertificate(chromium);
  } finally {
    await chromium.close();
  }
});

test('Firefox trusting only the ACME CA loads the meeting page for the domain and joins', async () => {
  const profile = path.join(dir, 'firefox-profile');
  trustPebble(profile);
  const firefox = await launchFirefox({ profile, strictTls: true, prefs: { 'network.dns.localDomains': DOMAIN } });
  try {
    await joinsOverTheCertificate(firefox);
  } finally {
    await firefox.close();
  }
});
