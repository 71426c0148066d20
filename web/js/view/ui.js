// What the meeting screen's views share: one object, made when the meeting
// starts and handed to each `wireX(ui)` (app.js composes them). A view
// reads the meeting and the tiles here, and calls the others through the
// hooks below, which the view named beside each fills in while it is
// wired (all of them before the meeting starts; until then they do
// nothing).

import { $ } from './dom.js';
import { makeTile } from './tile.js';

/** @typedef {import('../meeting.js').Meeting} Meeting */
/** @typedef {import('./tile.js').Tile} Tile */

/**
 * @typedef {object} MeetingUi
 * @property {Meeting} meeting
 * @property {string} room
 * @property {string|undefined} name  the name one joined with (none: a guest)
 * @property {MediaStream} stream  one's own camera and microphone
 * @property {{secret: Uint8Array, text: string}|null} key  the link's end-to-end key
 * @property {(render: () => void) => void} onLanguage  adds a re-render for a language switch
 * @property {HTMLElement} grid  the tiles' grid
 * @property {Tile} self  one's own tile
 * @property {Map<number, Tile>} tiles  the others' tiles, by participant id
 * @property {Map<number, Tile>} screens  shared screens, by sharer
 * @property {number} page  the page of the grid on screen (0-based)
 * @property {() => void} layout  sizes and pages the grid (grid.js)
 * @property {() => void} renderStage  puts a screen or the speaker on the stage (grid.js)
 * @property {() => void} reportView  tells the server which videos are on screen, how large (grid.js)
 * @property {(video: HTMLVideoElement) => void} watch  reports the view again when `video` changes size (grid.js)
 * @property {() => void} renderSelf  one's own tile and toolbar toggles (selfview.js)
 * @property {() => void} placeSelf  one's own tile into the grid or floating (selfview.js)
 * @property {() => void} renderCount  the participant count (tiles.js)
 * @property {() => void} renderPanel  the side panel's people and one's own state (side.js)
 * @property {(open: boolean) => void} setSide  opens or closes the side panel (side.js)
 * @property {(text: string|null) => void} setBanner  the banner's text, or none (status.js)
 */

const nothing = () => {};

/**
 * @param {{meeting: Meeting, room: string, name: string|undefined, stream: MediaStream,
 *   key: {secret: Uint8Array, text: string}|null, onLanguage: (render: () => void) => void}} opts
 * @returns {MeetingUi}
 */
export function meetingUi(opts) {
  return {
    ...opts,
    grid: $('grid'),
    self: makeTile('self'),
    tiles: new Map(),
    screens: new Map(),
    page: 0,
    layout: nothing,
    renderStage: nothing,
    reportView: nothing,
    watch: nothing,
    renderSelf: nothing,
    placeSelf: nothing,
    renderCount: nothing,
    renderPanel: nothing,
    setSide: nothing,
    setBanner: nothing,
  };
}
