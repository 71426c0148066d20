// Meeting control through the real UI in Chromium: a moderator protects
// the room with a password, a wrong password is refused and the right one
// lets a newcomer in who then decodes video; chat public and private
// arrives only where it should and HTML shows as text; the lobby admits
// and refuses; a removed participant cannot come back into a locked room;
// the UI speaks German on request; the log keeps every secret.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { myId, openPage, serverAndBrowser, statsOf, until } from './harness.mjs';

const ctx = serverAndBrowser();

/** @param {import('playwright-core').Page} page */
const state = (page) => page.evaluate(() => /** @type {any} */ (window).aconfi?.state);
/** @param {import('playwright-core').Page} page */
const messages = (page) => page.locator('#messages li').allTextContents();

/** @param {import('playwright-core').Page} page @param {string} password */
async function enterPassword(page, password) {
  await page.locator('#password-view').waitFor({ state: 'visible' });
  await page.fill('#password-input', password);
  await page.click('#password-submit');
}

test('password, chat, lobby, remove and lock, as a user does it', async () => {
  const { server, browser } = ctx;
  const room = `council-${Math.random().toString(36).slice(2, 10)}`;
  const PASSWORD = 'open sesame 42';
  const url = (/** @type {string} */ name, extra = '') => `${server.origin}/${room}#name=${name}&autojoin=1${extra}`;
  const dialogs = [];

  const alice = await openPage(browser, url('Alice'));
  alice.page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const aliceId = await until(() => myId(alice.page), 'alice joined');
  await alice.page.click('#side-btn');
  await alice.page.locator('#settings').waitFor({ state: 'visible' });
  await alice.page.click('#settings summary');
  await alice.page.fill('#new-password', PASSWORD);
  await alice.page.click('#set-password');
  await until(() => alice.page.evaluate(() => /** @type {any} */ (window).aconfi.roomState.password), 'password set');

  // Bob: asked for the password, refused with a wrong one, in with the right one.
  const bob = await openPage(browser, url('Bob'));
  bob.page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await enterPassword(bob.page, 'guess');
  await until(async () => (await bob.page.locator('#password-msg').textContent())?.includes('Wrong password'), 'wrong password message');
  assert.equal(await state(bob.page), 'password');
  assert.equal(await alice.page.locator('.tile:not(.self)').count(), 0, 'nobody got in');
  await enterPassword(bob.page, PASSWORD);
  const bobId = await until(() => myId(bob.page), 'bob joined');
  await until(async () => (await statsOf(bob.page))[aliceId]?.framesDecoded > 10, 'bob decodes alice');
  await until(async () => (await statsOf(alice.page))[bobId]?.framesDecoded > 10, 'alice decodes bob');

  const carol = await openPage(browser, url('Carol', '&camera=off'));
  await enterPassword(carol.page, PASSWORD);
  const carolId = await until(() => myId(carol.page), 'carol joined');
  await alice.page.locator(`#people-list li[data-participant="${carolId}"]`).waitFor();

  // Chat: public reaches both, HTML stays text, links are safe anchors.
  const xss = 'look <img src=x onerror=alert(1)> https://example.org/agenda';
  await alice.page.fill('#chat-input', xss);
  await alice.page.click('#chat-form button[type=submit]');
  for (const p of [bob, carol]) {
    await until(async () => (await messages(p.page)).some((m) => m.includes('<img src=x onerror=alert(1)>')), 'public chat');
    assert.equal(await p.page.locator('#messages img').count(), 0, 'no HTML injected');
    const link = p.page.locator('#messages a');
    assert.equal(await link.getAttribute('href'), 'https://example.org/agenda');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  }
  // Private to Bob: Bob has it, Carol never does (a later public message
  // reaches Carol, so the private one would have arrived before it).
  await alice.page.selectOption('#chat-to', String(bobId));
  await alice.page.fill('#chat-input', 'for Bob only');
  await alice.page.click('#chat-form button[type=submit]');
  await until(async () => (await messages(bob.page)).some((m) => m.includes('for Bob only')), 'private chat at bob');
  await alice.page.selectOption('#chat-to', '');
  await alice.page.fill('#chat-input', 'public again');
  await alice.page.click('#chat-form button[type=submit]');
  await until(async () => (await messages(carol.page)).some((m) => m.includes('public again')), 'second public chat at carol');
  assert.ok(!(await messages(carol.page)).some((m) => m.includes('for Bob only')), 'private stays private');

  // Lobby: Dave is admitted, Eve refused.
  await alice.page.check('#lobby');
  await until(() => alice.page.evaluate(() => /** @type {any} */ (window).aconfi.roomState.lobby), 'lobby on');
  const dave = await openPage(browser, url('Dave', '&camera=off'));
  await enterPassword(dave.page, PASSWORD);
  await dave.page.locator('#lobby-view').waitFor({ state: 'visible' });
  await alice.page.locator('#waiting-list li', { hasText: 'Dave' }).locator('.admit').click();
  await until(async () => (await state(dave.page)) === 'joined', 'dave admitted');
  const eve = await openPage(browser, url('Eve', '&camera=off'));
  await enterPassword(eve.page, PASSWORD);
  await eve.page.locator('#lobby-view').waitFor({ state: 'visible' });
  await alice.page.locator('#waiting-list li', { hasText: 'Eve' }).locator('.refuse').click();
  await eve.page.locator('#ended').waitFor({ state: 'visible' });
  assert.match(await eve.page.locator('#ended-detail').textContent() ?? '', /did not let you in/);
  await alice.page.uncheck('#lobby');

  // Lock, then remove Carol: she is out and cannot come back.
  await alice.page.check('#lock');
  await until(() => alice.page.evaluate(() => /** @type {any} */ (window).aconfi.roomState.locked), 'locked');
  await alice.page.locator(`#people-list li[data-participant="${carolId}"] .remove`).click();
  await carol.page.locator('#ended').waitFor({ state: 'visible' });
  assert.match(await carol.page.locator('#ended-detail').textContent() ?? '', /removed you/);
  await alice.page.locator(`.tile[data-participant="${carolId}"]`).waitFor({ state: 'detached' });
  const carolAgain = await openPage(browser, url('Carol', '&camera=off'));
  await carolAgain.page.locator('#ended').waitFor({ state: 'visible' });
  assert.match(await carolAgain.page.locator('#ended-detail').textContent() ?? '', /locked/);

  // German on request, everywhere at once.
  await bob.page.selectOption('#meeting .lang-select', 'de');
  assert.equal(await bob.page.locator('#leave').textContent(), 'Verlassen');
  assert.equal(await bob.page.locator('#side-btn').textContent(), 'Teilnehmende & Chat');
  assert.equal(await bob.page.locator('#hand').textContent(), 'Hand heben');

  assert.deepEqual(dialogs, [], 'no script ran from chat');
  for (const p of [alice, bob, carol, dave, eve, carolAgain]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }

  // The log of the whole meeting keeps every secret.
  const log = server.log();
  for (const secret of [PASSWORD, 'guess', room, 'Alice', 'Bob', 'Carol', 'Dave', 'Eve', 'for Bob only', 'agenda', '127.0.0.1']) {
    assert.ok(!log.includes(secret), `server log contains ${secret}`);
  }
});
