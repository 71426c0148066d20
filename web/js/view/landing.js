// The landing page: start a new meeting (end-to-end encrypted where the
// browser can), or join one by its name or a pasted link.

import { S } from '../i18n.js';
import { newSecret } from '../e2ee/link.js';
import { frameApi } from '../frames.js';
import { normaliseRoomName } from '../protocol.js';
import { $, show } from './dom.js';

/** Shows the landing page and wires its two forms. */
export function landing() {
  show('landing');
  // End-to-end encryption is the default where the browser can do it; the
  // secret goes into the fragment, which survives the redirect to the
  // meeting's name and never reaches the server.
  const e2ee = $('e2ee-start');
  e2ee.disabled = !frameApi();
  e2ee.checked = !e2ee.disabled;
  $('start').onclick = () => { location.href = e2ee.checked ? `/new#key=${newSecret()}` : '/new'; };
  $('join-form').onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const raw = String($('room-input').value).trim();
    // Accept a pasted link as well as a bare name; a link keeps its
    // fragment (the end-to-end key).
    const [base, ...rest] = raw.split('#');
    const hash = rest.length > 0 ? `#${rest.join('#')}` : '';
    const last = base.split('?')[0].split('/').filter(Boolean).pop() ?? '';
    const room = normaliseRoomName(base.includes('/') ? last : base);
    if (!room) {
      $('room-error').textContent = S().invalidRoom;
      $('room-error').hidden = false;
      return;
    }
    location.href = `/${room}${hash}`;
  };
}
