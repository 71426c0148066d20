// A private chat whose recipient leaves: the next message must not go to
// the whole room. Once with the writer in Chromium, once in Firefox.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, freshRoom, serverAndBrowsers, until } from './harness.mjs';

const ctx = serverAndBrowsers();

/** @typedef {import('./browsers.mjs').Participant} Participant */

/** @param {Participant} p */
const messages = (p) => p.texts('#messages li');

for (const [kind, otherKind] of /** @type {const} */ ([['chromium', 'firefox'], ['firefox', 'chromium']])) {
  test(`a private message never falls back to everyone when its recipient leaves (writer in ${kind})`, async () => {
    const { server } = ctx;
    const room = freshRoom('whisper');
    const url = (/** @type {string} */ name) => `${server.origin}/${room}#name=${name}&autojoin=1`;
    const alice = await ctx[kind].open(url('Alice'));
    await alice.joined();
    const bob = await ctx[otherKind].open(url('Bob'));
    const bobId = await bob.joined();
    const carol = await ctx[kind].open(url('Carol'));
    await carol.joined();

    await alice.click('#side-btn');
    await until(async () => (await alice.count(`#chat-to option[value="${bobId}"]`)) > 0, 'bob in the recipient list');
    await alice.select('#chat-to', String(bobId));
    await alice.fill('#chat-input', 'first secret');
    await alice.click('#chat-form button[type=submit]');
    await until(async () => (await messages(bob)).some((m) => m.includes('first secret')), 'private message at bob');

    // Bob leaves: Alice's choice says so instead of turning into "Everyone".
    await bob.click('#leave');
    await until(async () => (await alice.evaluate(() => /** @type {HTMLSelectElement} */ (document.getElementById('chat-to')).value)) === 'gone',
      'the recipient choice says bob left');
    assert.match(await alice.evaluate(() => /** @type {HTMLSelectElement} */ (document.getElementById('chat-to')).selectedOptions[0].textContent) ?? '', /Bob has left/);

    // Her next message is not sent; she is told why and keeps her text.
    await alice.fill('#chat-input', 'second secret');
    await alice.click('#chat-form button[type=submit]');
    await until(async () => (await alice.texts('#toasts .toast')).some((t) => t.includes('has left')), 'told to choose again');
    assert.equal(await alice.evaluate(() => /** @type {HTMLInputElement} */ (document.getElementById('chat-input')).value), 'second secret');

    // Choosing everyone again is her decision; what the room gets is only that.
    await alice.select('#chat-to', '');
    await alice.fill('#chat-input', 'for everyone');
    await alice.click('#chat-form button[type=submit]');
    await until(async () => (await messages(carol)).some((m) => m.includes('for everyone')), 'public message at carol');
    assert.ok(!(await messages(carol)).some((m) => m.includes('secret')), 'no private text reached carol');

    assertCleanPages([alice, bob, carol], server.origin);
    for (const p of [alice, bob, carol]) await p.close();
  });
}
