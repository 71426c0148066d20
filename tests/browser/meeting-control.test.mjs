// Meeting control through the real UI, run twice: once with the moderator
// in Firefox and the others alternating Chromium/Firefox, once the other
// way round. The moderator protects the room with a password; a wrong one is
// refused and the right one lets a newcomer in who then decodes video; the
// moderator mutes someone (nobody hears them until they unmute); chat public
// and private arrives only where it should and HTML shows as text; the
// lobby admits and refuses; a removed participant cannot come back into a
// locked room; the UI speaks German on request; the log keeps every secret.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertCleanPages, assertLogKeepsSecrets, freshRoom, serverAndBrowsers, until,
} from './harness.mjs';

const ctx = serverAndBrowsers();

/** @typedef {import('./browsers.mjs').Participant} Participant */

/** @param {Participant} p */
const messages = (p) => p.texts('#messages li');

/** @param {Participant} p @param {string} password */
async function enterPassword(p, password) {
  await p.waitFor('#password-view');
  await p.fill('#password-input', password);
  await p.click('#password-submit');
}

/** @param {Participant} p @param {string} text @param {string} [to] a participant id, or '' for everyone */
async function chat(p, text, to) {
  if (to !== undefined) await p.select('#chat-to', to);
  await p.fill('#chat-input', text);
  await p.click('#chat-form button[type=submit]');
}

/** Audio packets `p` has received from `id` so far. @param {Participant} p @param {number} id */
const audioFrom = async (p, id) => (await p.stats())[id]?.audioPacketsReceived ?? 0;

for (const modKind of /** @type {const} */ (['firefox', 'chromium'])) {
  test(`password, mute, chat, lobby, remove and lock with the moderator in ${modKind}`, async () => {
    const { server } = ctx;
    const otherKind = modKind === 'firefox' ? 'chromium' : 'firefox';
    const [mod, other] = [ctx[modKind], ctx[otherKind]];
    const room = freshRoom('council');
    const PASSWORD = 'open sesame 42';
    const url = (/** @type {string} */ name, extra = '') => `${server.origin}/${room}#name=${name}&autojoin=1${extra}`;

    const alice = await mod.open(url('Alice'));
    const aliceId = await alice.joined();
    await alice.click('#side-btn');
    await alice.waitFor('#settings');
    await alice.click('#settings summary');
    await alice.fill('#new-password', PASSWORD);
    await alice.click('#set-password');
    await until(() => alice.evaluate(() => /** @type {any} */ (window).aconfi.roomState.password), 'password set');

    // Bob: asked for the password, refused with a wrong one, in with the right one.
    const bob = await other.open(url('Bob'));
    await enterPassword(bob, 'guess');
    await until(async () => (await bob.text('#password-msg'))?.includes('Wrong password'), 'wrong password message');
    assert.equal(await bob.state(), 'password');
    assert.equal(await alice.count('.tile:not(.self)'), 0, 'nobody got in');
    await enterPassword(bob, PASSWORD);
    const bobId = await bob.joined();
    await until(async () => (await bob.stats())[aliceId]?.framesDecoded > 10, 'bob decodes alice');
    await until(async () => (await alice.stats())[bobId]?.framesDecoded > 10, 'alice decodes bob');

    const carol = await mod.open(url('Carol', '&camera=off'));
    await enterPassword(carol, PASSWORD);
    const carolId = await carol.joined();
    await alice.waitFor(`#people-list li[data-participant="${carolId}"]`);

    // The moderator mutes Bob: he is told, his toolbar shows it, Carol sees
    // the indicator and stops hearing him (while Alice's audio still
    // arrives); he unmutes himself and is heard again. A muted microphone
    // track still sends Opus packets (of silence): that none reach Carol is
    // the server refusing to forward them.
    await until(async () => (await audioFrom(carol, bobId)) > 20, 'carol hears bob');
    await alice.click(`#people-list li[data-participant="${bobId}"] .mute`);
    await until(async () => (await bob.attr('#mic', 'aria-pressed')) === 'false', 'bob muted');
    await until(async () => (await bob.texts('#toasts .toast')).some((t) => t.includes('muted you')), 'bob told');
    await until(async () => /audio-off/.test(await carol.attr(`.tile[data-participant="${bobId}"]`, 'class') ?? ''), 'carol sees bob muted');
    const [bobMuted, aliceMark] = [await audioFrom(carol, bobId), await audioFrom(carol, aliceId)];
    await until(async () => (await audioFrom(carol, aliceId)) > aliceMark + 100, 'two seconds of alice');
    assert.ok((await audioFrom(carol, bobId)) < bobMuted + 10, 'nothing of bob reaches carol while muted');
    await bob.click('#mic');
    await until(async () => (await audioFrom(carol, bobId)) > bobMuted + 50, 'bob heard again');

    // Chat: public reaches both, HTML stays text, links are safe anchors.
    const xss = 'look <img src=x onerror=alert(1)> https://example.org/agenda';
    await chat(alice, xss);
    for (const p of [bob, carol]) {
      await until(async () => (await messages(p)).some((m) => m.includes('<img src=x onerror=alert(1)>')), `public chat (${p})`);
      assert.equal(await p.count('#messages img'), 0, 'no HTML injected');
      assert.equal(await p.attr('#messages a', 'href'), 'https://example.org/agenda');
      assert.equal(await p.attr('#messages a', 'rel'), 'noopener noreferrer');
    }
    // Private to Bob: Bob has it, Carol never does (a later public message
    // reaches Carol, so the private one would have arrived before it).
    await chat(alice, 'for Bob only', String(bobId));
    await until(async () => (await messages(bob)).some((m) => m.includes('for Bob only')), 'private chat at bob');
    await chat(alice, 'public again', '');
    await until(async () => (await messages(carol)).some((m) => m.includes('public again')), 'second public chat at carol');
    assert.ok(!(await messages(carol)).some((m) => m.includes('for Bob only')), 'private stays private');
    // Bob's panel stayed closed: the chat button counts the three new
    // messages (the two public ones and his private one); opening the
    // panel reads them. He answers from the other browser.
    assert.equal(await bob.isVisible('#chat-input'), false, 'a message does not open the panel by itself');
    assert.equal(await bob.text('#unread'), '3');
    assert.match(await bob.attr('#side-btn', 'title') ?? '', /3 unread messages/);
    await bob.click('#side-btn');
    await bob.waitFor('#unread', 'hidden');
    assert.equal(await bob.attr('#side-btn', 'aria-expanded'), 'true');
    await chat(bob, 'thanks from Bob');
    await until(async () => (await messages(alice)).some((m) => m.includes('thanks from Bob')), 'bob chat at alice');

    // Lobby: Dave is admitted, Eve refused.
    await alice.setChecked('#lobby', true);
    await until(() => alice.evaluate(() => /** @type {any} */ (window).aconfi.roomState.lobby), 'lobby on');
    const dave = await other.open(url('Dave', '&camera=off'));
    await enterPassword(dave, PASSWORD);
    await dave.waitFor('#lobby-view');
    const waiting = (/** @type {string} */ name) => alice.evaluate((name) =>
      [...document.querySelectorAll('#waiting-list li')].find((li) => li.textContent?.includes(name))?.getAttribute('data-waiting'), name);
    await alice.click(`#waiting-list li[data-waiting="${await until(() => waiting('Dave'), 'dave waiting')}"] .admit`);
    await until(async () => (await dave.state()) === 'joined', 'dave admitted');
    const eve = await mod.open(url('Eve', '&camera=off'));
    await enterPassword(eve, PASSWORD);
    await eve.waitFor('#lobby-view');
    await alice.click(`#waiting-list li[data-waiting="${await until(() => waiting('Eve'), 'eve waiting')}"] .refuse`);
    await eve.waitFor('#ended');
    assert.match(await eve.text('#ended-detail') ?? '', /did not let you in/);
    await alice.setChecked('#lobby', false);

    // Lock, then remove Carol: she is out and cannot come back.
    await alice.setChecked('#lock', true);
    await until(() => alice.evaluate(() => /** @type {any} */ (window).aconfi.roomState.locked), 'locked');
    // Removing asks first: Cancel keeps her in (a chat line sent after the
    // cancel still reaches her, so no removal went before it).
    await alice.click(`#people-list li[data-participant="${carolId}"] .remove`);
    await alice.waitFor('#confirm-dialog');
    assert.equal(await alice.text('#confirm-text'), 'Remove Carol from the meeting?');
    assert.equal(await alice.focused(), 'confirm-cancel', 'Cancel has the focus');
    await alice.click('#confirm-cancel');
    await alice.waitFor('#confirm-dialog', 'hidden');
    await chat(alice, 'still with us, Carol');
    await until(async () => (await messages(carol)).some((m) => m.includes('still with us')), 'carol still in after cancel');
    await alice.click(`#people-list li[data-participant="${carolId}"] .remove`);
    await alice.click('#confirm-ok');
    await carol.waitFor('#ended');
    assert.match(await carol.text('#ended-detail') ?? '', /removed you/);
    await alice.waitFor(`.tile[data-participant="${carolId}"]`, 'detached');
    const carolAgain = await other.open(url('Carol', '&camera=off'));
    await carolAgain.waitFor('#ended');
    assert.match(await carolAgain.text('#ended-detail') ?? '', /locked/);

    // German on request, everywhere at once.
    await bob.select('#meeting .lang-select', 'de');
    assert.equal(await bob.text('#leave'), 'Verlassen');
    assert.equal(await bob.text('#side-btn'), 'Teilnehmende & Chat');
    assert.equal(await bob.text('#hand'), 'Hand heben');

    // Ending the meeting for all asks first; Escape keeps it going (Bob
    // still gets a line sent after it); confirmed, everyone is out.
    await alice.click('#end-meeting');
    await alice.waitFor('#confirm-dialog');
    assert.match(await alice.text('#confirm-text') ?? '', /End the meeting for everyone/);
    await alice.press('Escape');
    await alice.waitFor('#confirm-dialog', 'hidden');
    await chat(alice, 'not over yet');
    await until(async () => (await messages(bob)).some((m) => m.includes('not over yet')), 'bob still in after escape');
    await alice.click('#end-meeting');
    await alice.click('#confirm-ok');
    await bob.waitFor('#ended');
    await alice.waitFor('#ended');

    const everyone = [alice, bob, carol, dave, eve, carolAgain];
    assertCleanPages(everyone, server.origin);
    for (const p of everyone) await p.close();

    // The log of the whole meeting keeps every secret.
    assertLogKeepsSecrets(server.log(), [PASSWORD, 'guess', room, 'Alice', 'Bob', 'Carol', 'Dave', 'Eve',
      'for Bob only', 'thanks from Bob', 'agenda']);
  });
}
