// The password door under attack, through the real UI, once with the
// person who matters in Chromium and once in Firefox:
// - guessing from several connections does not lock out someone with the
//   right password: they are held back a few seconds at most and admitted;
//   a guess held back is sent again by the page itself after the wait;
// - a room that emptied and was opened again by a stranger, with no
//   password, is not joined silently by a member coming back with the old
//   password: the member is warned and chooses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, assertLogKeepsSecrets, bothBrowsers, freshRoom, startServer, until } from './harness.mjs';

const drivers = bothBrowsers();

/** @typedef {import('./browsers.mjs').Participant} Participant */

/** A moderator in `room` who sets `password`. @param {Participant} p @param {string} password */
async function protect(p, password) {
  await p.joined();
  await p.click('#side-btn');
  await p.waitFor('#settings');
  await p.click('#settings summary');
  await p.fill('#new-password', password);
  await p.click('#set-password');
  await until(() => p.evaluate(() => /** @type {any} */ (window).aconfi.roomState.password), 'password set');
}

/** Notes every `password` event the page's meeting emits, in `window.passwordEvents`. @param {Participant} p */
const notePasswordEvents = (p) => p.evaluate(() => {
  const w = /** @type {any} */ (window);
  w.passwordEvents = [];
  w.aconfi.addEventListener('password', (/** @type {CustomEvent} */ ev) => w.passwordEvents.push(ev.detail));
});

for (const [kind, otherKind] of /** @type {const} */ ([['chromium', 'firefox'], ['firefox', 'chromium']])) {
  test(`guessing slows the door down but lets the right password in (${kind})`, async () => {
    const server = await startServer();
    try {
      const room = freshRoom('vault');
      const PASSWORD = 'correct horse 7';
      const url = (/** @type {string} */ name) => `${server.origin}/${room}#name=${name}&autojoin=1`;
      const mod = await drivers[otherKind].open(url('Mod'));
      await protect(mod, PASSWORD);
      // The one with the right password waits at the door meanwhile, to
      // type it the moment the guessing is over.
      const honest = await drivers[kind].open(url('Honest'));
      await honest.waitFor('#password-view');
      await notePasswordEvents(honest);

      // Four connections guess five times each, as fast as they are
      // answered. They share this machine's address, whose 10 guesses
      // refill one per 6 s: some guesses are held back, and a held-back
      // guess is sent again by the page itself after the wait.
      // The honest one has typed the password already, to send it the
      // moment the last guess was counted (the address's guesses are spent
      // then, and the next one is 6 s away).
      await honest.fill('#password-input', PASSWORD);
      let heldBack = 0;
      const guessers = [];
      for (let g = 0; g < 4; g++) {
        const guesser = await drivers[g % 2 ? kind : otherKind].open(url(`G${g}`));
        guessers.push(guesser);
        await guesser.waitFor('#password-view');
        await notePasswordEvents(guesser);
        for (let i = 0; i < 5; i++) {
          await guesser.evaluate((i) => /** @type {any} */ (window).aconfi.submitPassword(`guess ${i}`), i);
          await until(() => guesser.evaluate((n) => /** @type {any} */ (window).passwordEvents.length > n, i), `answer ${g}.${i}`);
        }
        /** @type {Array<{wrong: boolean, retryAfterMs?: number}>} */
        let events = await guesser.evaluate(() => /** @type {any} */ (window).passwordEvents);
        heldBack += events.filter((e) => e.retryAfterMs).length;
        if (events.at(-1)?.retryAfterMs) {
          // Its last guess waits: the page checks it after the wait, unasked.
          await until(async () => {
            events = await guesser.evaluate(() => /** @type {any} */ (window).passwordEvents);
            return events.at(-1)?.wrong;
          }, `guesser ${g}'s held-back guess sent again by itself`, 20000);
        }
      }
      assert.ok(heldBack > 0, '20 guesses in seconds from one address: some are held back');

      // The right password, sent right after the last wrong guess: the
      // address's guesses are spent, so it is held back — a few seconds,
      // never refused for the others' guessing — and then let in by the
      // page itself.
      await honest.click('#password-submit');
      const honestId = await honest.joined();
      /** @type {Array<{wrong: boolean, retryAfterMs?: number}>} */
      const events = await honest.evaluate(() => /** @type {any} */ (window).passwordEvents);
      assert.ok(events.length > 0 && events.some((e) => (e.retryAfterMs ?? 0) > 0), `held back first: ${JSON.stringify(events)}`);
      assert.ok(events.every((e) => !e.wrong), `never called wrong: ${JSON.stringify(events)}`);
      assert.ok(events.every((e) => (e.retryAfterMs ?? 0) <= 10000), `a wait of seconds, not a minute: ${JSON.stringify(events)}`);
      await until(async () => (await mod.count(`.tile[data-participant="${honestId}"]`)) > 0, 'the moderator sees them');

      assertCleanPages([mod, honest], server.origin);
      assertLogKeepsSecrets(server.log(), [PASSWORD, room, 'Honest', 'Mod']);
      for (const g of guessers) await g.close();
      await mod.close();
      await honest.close();
    } finally {
      await server.stop();
    }
  });

  test(`a member coming back with a password to a room a stranger reopened is warned (${kind})`, async () => {
    const server = await startServer();
    try {
      const room = freshRoom('board');
      const PASSWORD = 'board only 9';
      const url = (/** @type {string} */ name) => `${server.origin}/${room}#name=${name}&autojoin=1`;
      const mod = await drivers[otherKind].open(url('Mod'));
      await protect(mod, PASSWORD);
      const member = await drivers[kind].open(url('Member'));
      await member.waitFor('#password-view');
      await member.fill('#password-input', PASSWORD);
      await member.click('#password-submit');
      await member.joined();

      // The member's connection drops and stays away (its reconnects are
      // held in the page); the moderator leaves: the room is gone.
      await member.evaluate(() => {
        const w = /** @type {any} */ (window);
        const connect = w.aconfi.connect.bind(w.aconfi);
        w.heldConnects = [];
        w.aconfi.connect = () => w.heldConnects.push(connect);
        w.aconfi.ws.close(3999);
      });
      await until(async () => (await member.state()) === 'reconnecting', 'member reconnecting');
      await mod.click('#leave');
      await until(async () => (await mod.state()) === 'left', 'moderator left');
      // A stranger opens the room again: moderator, no password (were the
      // old room still there, they would be asked for its password).
      const stranger = await drivers[otherKind].open(url('Stranger'));
      await stranger.joined();
      assert.equal(await stranger.evaluate(() => /** @type {any} */ (window).aconfi.roomState.password), false);

      // The member's client comes back with the password: warned, not in.
      // (Its first reconnect attempt, held above, must have come.)
      await until(() => member.evaluate(() => /** @type {any} */ (window).heldConnects.length > 0), 'a reconnect attempt held');
      await member.evaluate(() => {
        const w = /** @type {any} */ (window);
        w.aconfi.connect = w.heldConnects.length ? w.heldConnects[0] : w.aconfi.connect;
        w.aconfi.connect();
      });
      await member.waitFor('#unprotected-view');
      assert.equal(await member.state(), 'unprotected');
      assert.equal(await stranger.count('.tile:not([data-participant="self"])'), 0, 'the stranger sees nobody come in');
      // Joining anyway is the member's choice.
      await member.click('#unprotected-join');
      const memberId = await member.joined();
      await until(async () => (await stranger.count(`.tile[data-participant="${memberId}"]`)) > 0, 'the stranger sees the member');

      assertCleanPages([member, stranger], server.origin);
      assertLogKeepsSecrets(server.log(), [PASSWORD, room, 'Member', 'Stranger']);
      for (const p of [mod, member, stranger]) await p.close();
    } finally {
      await server.stop();
    }
  });
}
