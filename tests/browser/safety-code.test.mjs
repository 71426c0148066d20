// The safety code of an end-to-end encrypted meeting in real browsers,
// Chromium and Firefox in the same meeting, through a relay in front of the
// server (hostile-relay.mjs):
//
// - Relaying honestly, both see one 20-digit code; "They match" marks the
//   other verified; a newcomer changes the code and is not verified, the
//   one compared before still is.
// - A relay that holds the link and swaps keys in the middle: both decode
//   each other's media (the relay passes the keys on, and holds them), yet
//   their codes differ, nobody is marked verified, and "They differ" marks
//   the other and warns.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, everyoneSeesEveryone, freshRoom, serverAndBrowsers, until } from './harness.mjs';
import { fromBase64Url, newSecret } from '../../web/js/e2ee/link.js';
import { startRelay } from './hostile-relay.mjs';

const ctx = serverAndBrowsers();
const CODE = /^\d{5} \d{5} \d{5} \d{5}$/;

/** A meeting link through `relay`. @param {{origin: string}} relay @param {string} room @param {string} key */
const linkVia = (relay, room, key) => `${relay.origin}/${room}#key=${key}`;

/** @param {import('./browsers.mjs').Participant} p */
async function codeOf(p) {
  if (!(await p.isVisible('#safety-code'))) await p.click('#side-btn');
  return until(async () => {
    const t = await p.text('#safety-code');
    return t && CODE.test(t) ? t : null;
  }, `a safety code (${p})`, 30000);
}

/** The trust marks a page shows on other participants' tiles. @param {import('./browsers.mjs').Participant} p */
const marks = (p) => p.evaluate(() => [...document.querySelectorAll('.tile:not(.self)')]
  .map((t) => (t.classList.contains('verified') ? 'verified' : t.classList.contains('suspect') ? 'suspect'
    : t.classList.contains('unverified') ? 'nokey' : 'unchecked')));

test('relayed honestly: one code for both browsers; "They match" verifies; a newcomer changes it and is not verified', async () => {
  const { server, chromium, firefox } = ctx;
  const key = newSecret();
  const room = freshRoom('honest-relay');
  const relay = await startRelay({ upstreamPort: server.port, secret: /** @type {Uint8Array} */ (fromBase64Url(key)), room, hostile: false });
  try {
    const fiona = await firefox.open(`${linkVia(relay, room, key)}&name=Fiona&autojoin=1`);
    const carl = await chromium.open(`${linkVia(relay, room, key)}&name=Carl&autojoin=1`);
    const ids = [await fiona.joined(), await carl.joined()];
    await everyoneSeesEveryone([fiona, carl], ids);
    const [cf, cc] = [await codeOf(fiona), await codeOf(carl)];
    assert.equal(cf, cc, 'both read the same code');
    assert.deepEqual([await marks(fiona), await marks(carl)], [['unchecked'], ['unchecked']], 'nobody verified before comparing');
    for (const p of [fiona, carl]) {
      await p.click('#code-match');
      await until(async () => (await marks(p)).join() === 'verified', `the other verified (${p})`);
      assert.ok(await p.isVisible('#safety-answered'), `told what the answer did (${p})`);
      assert.ok(!(await p.isVisible('#safety-actions')), `no question left for this code (${p})`);
    }
    // A third joins: a new code for three, the newcomer not verified.
    const dora = await chromium.open(`${linkVia(relay, room, key)}&name=Dora&autojoin=1`);
    ids.push(await dora.joined());
    await everyoneSeesEveryone([fiona, carl, dora], ids);
    const codes = await Promise.all([fiona, carl, dora].map((p) => until(async () => {
      const c = await codeOf(p);
      return c !== cf ? c : null;
    }, `a new code (${p})`)));
    assert.equal(new Set(codes).size, 1, `one new code: ${codes}`);
    assert.ok(await fiona.isVisible('#code-match'), 'the new code may be compared again');
    const byId = await fiona.evaluate(() => Object.fromEntries([...document.querySelectorAll('.tile:not(.self)')]
      .map((t) => [/** @type {HTMLElement} */ (t).dataset.participant, t.classList.contains('verified')])));
    assert.deepEqual(byId, { [ids[1]]: true, [ids[2]]: false }, 'Carl stays verified, Dora is not');
    assertCleanPages([fiona, carl, dora], relay.origin);
  } finally {
    await relay.stop();
  }
});

test('a relay holding the link swaps keys in the middle: media flows, the codes differ, nobody is verified, "They differ" warns', async () => {
  const { server, chromium, firefox } = ctx;
  const key = newSecret();
  const room = freshRoom('hostile-relay');
  const relay = await startRelay({ upstreamPort: server.port, secret: /** @type {Uint8Array} */ (fromBase64Url(key)), room, hostile: true });
  try {
    const alice = await chromium.open(`${linkVia(relay, room, key)}&name=Alice&autojoin=1`, { init: () => { /** @type {any} */ (window).ACONFI_TEST_HOOKS = true; } });
    const ids = [await alice.joined()];
    const nils = await firefox.open(`${linkVia(relay, room, key)}&name=Nils&autojoin=1`);
    ids.push(await nils.joined());
    // The attack works: each decodes the other, through keys the relay holds.
    await everyoneSeesEveryone([alice, nils], ids);
    const sending = await alice.evaluate(() => /** @type {any} */ (window).aconfi.e2ee.exportKeys().sending);
    assert.ok(relay.stolen.some((k) => k.from === ids[0] && String(k.kid) === sending.kid
      && Buffer.from(k.key).toString('hex') === sending.key), 'the relay holds the key Alice sends with');
    // Only the code tells.
    const [ca, cn] = [await codeOf(alice), await codeOf(nils)];
    assert.notEqual(ca, cn, 'the codes differ');
    assert.deepEqual([await marks(alice), await marks(nils)], [['unchecked'], ['unchecked']], 'nobody is marked verified');
    await alice.click('#code-differ');
    await until(async () => (await marks(alice)).join() === 'suspect', 'Nils marked: keys differ');
    assert.ok(await alice.isVisible('#safety-warning'), 'a warning to leave');
    assert.match(await alice.text('.tile.suspect .trust-icon') ?? '', /keys differ/);
    assert.deepEqual(await marks(nils), ['unchecked'], 'what Alice answered stays in her page');
  } finally {
    await relay.stop();
  }
});
