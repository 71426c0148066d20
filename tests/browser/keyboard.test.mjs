// The meeting from the keyboard alone, in Chromium and Firefox: join from
// the prejoin screen (the name field has the focus, Enter joins), then the
// shortcuts M, V, R, C and ? — and none of them while the user types in
// the chat box. What the keys do is checked as the other participant sees
// it (the muted, camera-off and raised-hand marks on the tile).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCleanPages, freshRoom, serverAndBrowsers, until } from './harness.mjs';

const ctx = serverAndBrowsers();

/**
 * The visible buttons of the meeting that say nothing (no text, no
 * aria-label): a control must say what it does.
 * @param {import('./browsers.mjs').Participant} p
 */
const unnamedButtons = (p) => p.evaluate(() => [...document.querySelectorAll('#meeting button')]
  .filter((b) => b.checkVisibility() && !(b.textContent ?? '').trim() && !b.getAttribute('aria-label'))
  .map((b) => b.id || b.className));

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  test(`${kind}: join from the keyboard, then M, V, R, C and ? — not while typing in the chat`, async () => {
    const { server } = ctx;
    const other = kind === 'chromium' ? 'firefox' : 'chromium';
    const room = freshRoom('keys');
    const watcher = await ctx[other].open(`${server.origin}/${room}#autojoin=1&mic=off&name=Wat`);
    await watcher.joined();
    assert.deepEqual(await unnamedButtons(watcher), [], 'buttons without a label, alone in the meeting');
    const kay = await ctx[kind].open(`${server.origin}/${room}`);
    // Prejoin: the name field has the focus once the devices are asked for.
    await until(async () => await kay.focused() === 'name-input'
      && !(await kay.evaluate(() => /** @type {HTMLButtonElement} */ (document.getElementById('join-now')).disabled)),
    'the name field focused and Join enabled');
    await kay.type('Kay');
    await kay.press('Enter');
    const id = await kay.joined();
    assert.deepEqual(await unnamedButtons(kay), [], 'buttons without a label, two in the meeting');
    const tile = `.tile[data-participant="${id}"]`;
    const marks = async () => (await watcher.attr(tile, 'class')) ?? '';
    await until(async () => /\btile\b/.test(await marks()), 'the watcher sees Kay');
    assert.doesNotMatch(await marks(), /audio-off|video-off|hand-up/, 'Kay starts with microphone and camera on');

    // M, V, R: as the toolbar buttons, seen by the watcher.
    await kay.press('m');
    await until(async () => /audio-off/.test(await marks()), 'M mutes: the watcher sees Kay muted');
    assert.equal(await kay.attr('#mic', 'aria-pressed'), 'false');
    await kay.press('v');
    await until(async () => /video-off/.test(await marks()), 'V turns the camera off');
    await kay.press('r');
    await until(async () => /hand-up/.test(await marks()), 'R raises the hand');
    await kay.press('m');
    await until(async () => !/audio-off/.test(await marks()), 'M again unmutes');

    // C: the panel opens with the focus in the chat box; letters typed
    // there are text, not shortcuts.
    await kay.press('c');
    await kay.waitFor('#side', 'visible');
    assert.equal(await kay.focused(), 'chat-input');
    await kay.type('mvrc?');
    assert.equal(await kay.evaluate(() => /** @type {HTMLInputElement} */ (document.getElementById('chat-input')).value), 'mvrc?');
    await kay.press('Enter');
    await until(async () => (await watcher.texts('#messages li')).some((t) => t.includes('mvrc?')), 'the chat line reaches the watcher');
    const after = await marks();
    assert.doesNotMatch(after, /audio-off/, 'M typed in the chat did not mute');
    assert.match(after, /video-off/, 'V typed in the chat did not turn the camera on');
    assert.match(after, /hand-up/, 'R typed in the chat did not lower the hand');
    assert.ok(await kay.isVisible('#side'), 'C typed in the chat did not close the panel');
    assert.equal(await kay.isVisible('#shortcuts-dialog'), false, '? typed in the chat did not open the help');

    // Out of the chat box (Shift+Tab to the recipient list is still a
    // field; the page body is not): ? lists the shortcuts, Escape closes.
    await kay.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.blur());
    await kay.press('?');
    await kay.waitFor('#shortcuts-dialog', 'visible');
    const keys = await kay.texts('#shortcuts-list kbd');
    assert.deepEqual(keys, ['M', 'V', 'S', 'C', 'R', '?']);
    await kay.press('m');
    assert.doesNotMatch(await marks(), /audio-off/, 'no shortcut while the help is open');
    await kay.press('Escape');
    await kay.waitFor('#shortcuts-dialog', 'hidden');
    await kay.press('c');
    await kay.waitFor('#side', 'hidden');
    assertCleanPages([watcher, kay], server.origin);
    await kay.close();
    await watcher.close();
  });
}

/**
 * Walks `view` with the keyboard: from its first control (reached by Tab
 * and Shift+Tab, as a user would come back to it) Tab to its last (at most
 * `max` times; not past it: headless Firefox never gives the page the focus
 * back from its own UI). Returns what was wrong on the way: a stop that
 * cannot be seen, one drawn without a focus ring (a solid outline at least
 * 2 px), the focus leaving the page early.
 * @param {import('./browsers.mjs').Participant} p @param {string} view @param {number} max
 */
async function tabRound(p, view, max) {
  const last = await p.evaluate((view) => {
    const controls = [...document.querySelectorAll(`#${view} :is(a[href], button, input, select, textarea, summary, [tabindex])`)]
      .filter((el) => el.getAttribute('tabindex') !== '-1' && el.checkVisibility() && !(/** @type {any} */ (el).disabled));
    /** @type {HTMLElement|undefined} */ (controls[0])?.focus();
    return controls.at(-1)?.id;
  }, view);
  assert.ok(last, `${view}: its last control has an id`);
  await p.press('Tab');
  await p.pressWith('Shift', 'Tab');
  /** @type {string[]} */
  const faults = [];
  const seen = new Set();
  for (let i = 0; i < max; i++) {
    const stop = await p.evaluate(() => {
      if (!document.hasFocus()) return null;
      const el = /** @type {HTMLElement} */ (document.activeElement);
      const css = getComputedStyle(el);
      return {
        name: el.id || `${el.tagName.toLowerCase()}.${el.className}`,
        visible: el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }),
        ring: css.outlineStyle !== 'none' && parseFloat(css.outlineWidth) >= 2,
      };
    });
    if (!stop) { faults.push(`the focus left the page before #${last}`); break; }
    if (seen.has(stop.name)) { faults.push(`Tab came back to ${stop.name} before #${last}`); break; }
    seen.add(stop.name);
    if (!stop.visible) faults.push(`${stop.name}: focused but not visible`);
    if (!stop.ring) faults.push(`${stop.name}: no visible focus ring`);
    if (stop.name === last) break;
    await p.press('Tab');
  }
  return { faults, stops: seen.size };
}

for (const kind of /** @type {const} */ (['chromium', 'firefox'])) {
  test(`${kind}: the focus is always visible, on the prejoin screen and in the meeting`, async () => {
    const { server } = ctx;
    const other = kind === 'chromium' ? 'firefox' : 'chromium';
    const room = freshRoom('focus');
    const watcher = await ctx[other].open(`${server.origin}/${room}#autojoin=1&mic=off&name=Wat`);
    await watcher.joined();
    const p = await ctx[kind].open(`${server.origin}/${room}#name=Fo`);
    await until(async () => await p.focused() === 'name-input', 'the prejoin screen ready');
    const prejoin = await tabRound(p, 'prejoin', 30);
    assert.ok(prejoin.stops >= 5, `the prejoin screen's controls are reached by Tab: ${prejoin.stops}`);
    assert.deepEqual(prejoin.faults, [], 'prejoin');
    await p.click('#join-now');
    await p.joined();
    const meeting = await tabRound(p, 'meeting', 40);
    assert.ok(meeting.stops >= 6, `the toolbar is reached by Tab: ${meeting.stops}`);
    assert.deepEqual(meeting.faults, [], 'meeting');
    for (const q of [p, watcher]) await q.close();
  });
}
