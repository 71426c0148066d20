// Where the tiles go: the grid (sized to the screen, paged when they do not
// fit), the stage (a shared screen, or the speaker when three or more
// meet) and the grid/stage switch; and what the server is told is on
// screen, so that hidden videos cost nothing and small ones get a small
// layer.

import { S } from '../i18n.js';
import { setIconLabel } from '../icons.js';
import { MIN_THUMB, MIN_TILE, arrange, perPage } from '../layout.js';
import { $ } from './dom.js';
import { nameOf } from './panel.js';

/** @typedef {import('./ui.js').MeetingUi} MeetingUi */

/**
 * Sizes the tiles and pages them: as many per page as fit at a useful
 * size, the others hidden (and so not sent: the server is told what is on
 * screen), with the pager shown when there is more than one page.
 * @param {MeetingUi} ui
 */
function layoutGrid(ui) {
  const { grid } = ui;
  const all = /** @type {HTMLElement[]} */ ([...grid.children]);
  const gap = 8;
  const W = grid.clientWidth - gap * 2;
  const H = grid.clientHeight - gap * 2;
  if (W <= 0 || H <= 0) return;
  const n = Math.max(1, all.length);
  // Beside a stage the grid is a strip of thumbnails, smaller ones.
  const staged = grid.parentElement?.classList.contains('staged');
  const onePage = perPage(n, W, H, gap, staged ? MIN_THUMB : MIN_TILE);
  const pages = Math.ceil(n / onePage);
  ui.page = Math.max(0, Math.min(ui.page, pages - 1));
  all.forEach((t, i) => { t.hidden = Math.floor(i / onePage) !== ui.page; });
  const best = arrange(Math.min(onePage, n - ui.page * onePage), W, H, gap);
  grid.style.setProperty('--cols', String(best.cols));
  grid.style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
  grid.style.setProperty('--tile-h', `${Math.floor(best.h)}px`);
  $('pager').hidden = pages < 2;
  // A live region: said when it changes, not on every layout.
  const pageText = S().pageOf(ui.page + 1, pages);
  if ($('page-info').textContent !== pageText) $('page-info').textContent = pageText;
  $('page-prev').disabled = ui.page === 0;
  $('page-next').disabled = ui.page >= pages - 1;
}

/**
 * The grid, its pager and the stage; fills in `ui.layout`,
 * `ui.renderStage`, `ui.reportView` and `ui.watch`.
 * @param {MeetingUi} ui
 */
export function wireGrid(ui) {
  const { meeting, grid, tiles, screens } = ui;
  const stage = $('stage');
  ui.layout = () => layoutGrid(ui);
  $('page-prev').onclick = () => { ui.page--; ui.layout(); };
  $('page-next').onclick = () => { ui.page++; ui.layout(); };
  /** @type {'stage'|'grid'} */
  let view = 'stage';
  ui.renderStage = () => {
    // On the stage: a shared screen; else, with three or more people, the
    // one speaking (never oneself: one's own picture is the small one).
    const speaking = meeting.speaker !== meeting.you && meeting.speaker !== null ? tiles.get(meeting.speaker) : undefined;
    const crowd = tiles.size >= 2;
    const first = [...screens.values()][0] ?? (crowd ? speaking : undefined);
    const staged = view === 'stage' && first !== undefined;
    for (const t of [...screens.values(), ...tiles.values()]) {
      const home = staged && t === first ? stage : grid;
      if (t.tile.parentElement !== home) home.append(t.tile);
    }
    stage.hidden = !staged;
    $('meeting').querySelector('.body').classList.toggle('staged', staged);
    setIconLabel($('view-btn'), view === 'stage' ? 'grid' : 'stage', view === 'stage' ? S().gridView : S().stageView);
    // Offered whenever the stage can have someone on it, so it does not
    // come and go as people take turns speaking.
    $('view-btn').hidden = screens.size === 0 && !crowd;
    for (const [id, t] of screens) t.name.textContent = S().screenOf(nameOf(meeting, id));
    ui.layout();
    ui.reportView();
  };
  ui.onLanguage(ui.renderStage);
  $('view-btn').onclick = () => { view = view === 'stage' ? 'grid' : 'stage'; ui.renderStage(); };
  wireViewReport(ui, stage);
  new ResizeObserver(() => ui.layout()).observe(grid);
}

/**
 * The server learns which videos are on screen and how large (device
 * pixels), whenever the layout changes: once a frame at most.
 * @param {MeetingUi} ui @param {HTMLElement} stage
 */
function wireViewReport(ui, stage) {
  const { meeting, tiles, screens } = ui;
  let queued = false;
  ui.reportView = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      const dpr = window.devicePixelRatio || 1;
      const shown = [];
      for (const t of [...tiles.values(), ...screens.values()]) {
        if (t.mid === null || !t.tile.isConnected) continue;
        const r = t.video.getBoundingClientRect();
        if (r.width < 1 || r.height < 1) continue;
        shown.push({
          mid: t.mid, width: Math.round(r.width * dpr), height: Math.round(r.height * dpr), stage: t.tile.parentElement === stage,
        });
      }
      meeting.sendView(shown);
    });
  };
  // Every received video is watched (and the grid and stage, for tiles
  // coming and going).
  const resized = typeof ResizeObserver === 'function' ? new ResizeObserver(() => ui.reportView()) : null;
  resized?.observe(ui.grid);
  resized?.observe(stage);
  ui.watch = (video) => resized?.observe(video);
  meeting.addEventListener('media', () => ui.reportView());
}
