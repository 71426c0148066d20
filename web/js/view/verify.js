// The safety code in the meeting view: the lock badge, the code to read
// aloud, "They match" / "They differ", and what each participant's tile
// and list entry show of it. The scheme is e2ee/safety.js; docs/e2ee.md
// says what the code proves.

import { S } from '../i18n.js';
import { icon } from '../icons.js';
import { $ } from './dom.js';


/**
 * Where we stand with participant `id` in an end-to-end encrypted meeting:
 * 'nokey' (we cannot decrypt them: no key, or their link did not check
 * out), 'match' or 'differ' (what our user said comparing a code that
 * covered them), 'unchecked' (encrypted, not compared yet); null in a
 * plain meeting.
 * @param {import('../meeting.js').Meeting} meeting @param {number} id
 * @returns {'nokey'|'unchecked'|'match'|'differ'|null}
 */
export function trustOf(meeting, id) {
  const e2ee = meeting.e2ee;
  if (!e2ee) return null;
  const { compared } = e2ee.peerState(id);
  if (compared === 'differ') return 'differ';
  if (!e2ee.canDecrypt(id)) return 'nokey';
  return compared === 'match' ? 'match' : 'unchecked';
}

/** The mark for a trust state: its class, text and title; null for none. @param {ReturnType<typeof trustOf>} trust */
export function trustMark(trust) {
  switch (trust) {
    case 'nokey': return { cls: 'unverified', text: S().noKey, title: S().noKeyTitle };
    case 'match': return { cls: 'verified', text: S().verifiedMark, title: S().verifiedTitle };
    case 'differ': return { cls: 'suspect', text: S().suspectMark, title: S().suspectTitle };
    default: return null;
  }
}

/**
 * Wires the badge and the safety-code panel to `meeting`; `onTrust` is
 * called whenever what the marks should show may have changed. Returns a
 * re-render hook (for a language switch).
 * @param {import('../meeting.js').Meeting} meeting @param {() => void} onTrust
 * @returns {() => void}
 */
export function wireSafetyCode(meeting, onTrust) {
  /** The code our user last answered, so the buttons go once it is answered. */
  let answered = '';
  /** @type {'match'|'differ'|null} */
  let verdict = null;

  const render = () => {
    const e2ee = meeting.e2ee;
    $('e2ee-badge').hidden = !e2ee;
    $('e2ee-panel').hidden = !e2ee;
    if (!e2ee) return;
    $('e2ee-badge').replaceChildren(icon('lock'), S().e2eeBadge);
    $('e2ee-badge').title = S().e2eeBadgeTitle;
    const code = e2ee.code;
    const others = [...meeting.participants.keys()].some((id) => e2ee.peerState(id).status === 'authentic');
    $('safety-code').textContent = code || (others ? S().safetyComparing : S().safetyAlone);
    $('safety-code').classList.toggle('pending', !code);
    $('safety-help').textContent = S().safetyHelp;
    const open = Boolean(code) && answered !== code;
    $('safety-actions').hidden = !open;
    $('safety-answered').hidden = open || !code || verdict !== 'match' || answered !== code;
    $('safety-answered').textContent = S().codeMatched;
    const warn = [...meeting.participants.keys()].some((id) => e2ee.peerState(id).compared === 'differ');
    $('safety-warning').hidden = !warn;
    $('safety-warning').textContent = S().codeDifferWarning;
    onTrust();
  };

  /** @param {'match'|'differ'} v */
  const answer = async (v) => {
    const code = meeting.e2ee?.code ?? '';
    // Only the code on screen: one that changed meanwhile is not answered.
    if (meeting.e2ee && (await meeting.e2ee.compare(code, v))) {
      answered = code;
      verdict = v;
    }
    render();
  };
  $('code-match').onclick = () => answer('match');
  $('code-differ').onclick = () => answer('differ');
  meeting.addEventListener('e2ee', render);
  meeting.addEventListener('participants', render);
  render();
  return render;
}
