//! Where each video source goes on the 1280x720 canvas.

use crate::protocol::Kind;

pub const WIDTH: i32 = 1280;
pub const HEIGHT: i32 = 720;

/// Width of the screen share when one is shown; cameras share the rest.
const SCREEN_WIDTH: i32 = 960;
/// Beside a screen share, at most this many cameras: thinner slots would
/// leave faces too small to recognise.
const COLUMN_MAX: usize = 8;
/// The grid stops growing at 4x4.
const GRID_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

/// Tile for each video source, in the order given: `None` for a source that
/// does not fit (it is still decoded, just not shown).
pub fn layout(videos: &[(u32, Kind)]) -> Vec<(u32, Option<Rect>)> {
    let screen = videos.iter().position(|(_, kind)| *kind == Kind::Screen);
    let mut out: Vec<(u32, Option<Rect>)> = videos.iter().map(|(ssrc, _)| (*ssrc, None)).collect();
    match screen {
        Some(screen) => {
            out[screen].1 = Some(Rect { x: 0, y: 0, w: SCREEN_WIDTH, h: HEIGHT });
            // Cameras first, then any further screens.
            let mut rest: Vec<usize> = (0..videos.len()).filter(|&i| i != screen).collect();
            rest.sort_by_key(|&i| videos[i].1 == Kind::Screen);
            rest.truncate(COLUMN_MAX);
            let n = rest.len() as i32;
            for (slot, &i) in rest.iter().enumerate() {
                let slot = slot as i32;
                let (y0, y1) = (even(slot * HEIGHT / n.max(1)), even((slot + 1) * HEIGHT / n.max(1)));
                out[i].1 = Some(Rect { x: SCREEN_WIDTH, y: y0, w: WIDTH - SCREEN_WIDTH, h: y1 - y0 });
            }
        }
        None => {
            let shown = videos.len().min(GRID_MAX);
            let (cols, rows) = grid(shown);
            for (i, tile) in out.iter_mut().take(shown).enumerate() {
                let (col, row) = (i % cols, i / cols);
                // An incomplete last row is centred.
                let in_row = if row == rows - 1 { shown - row * cols } else { cols };
                let cell_w = WIDTH / cols as i32;
                let offset = (WIDTH - cell_w * in_row as i32) / 2;
                let (x0, x1) = (even(offset + col as i32 * cell_w), even(offset + (col as i32 + 1) * cell_w));
                let (y0, y1) = (even(row as i32 * HEIGHT / rows as i32), even((row as i32 + 1) * HEIGHT / rows as i32));
                tile.1 = Some(Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 });
            }
        }
    }
    out
}

/// Columns and rows for `n` tiles.
fn grid(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (2, 1),
        3 | 4 => (2, 2),
        5 | 6 => (3, 2),
        7..=9 => (3, 3),
        _ => (4, 4),
    }
}

/// Even coordinates keep 4:2:0 chroma planes aligned.
fn even(v: i32) -> i32 {
    v & !1
}

/// Label size for a tile of height `h`: 18 pt on a full-height tile, never
/// below what is still readable.
pub fn font_size(h: i32) -> i32 {
    (h / 24).clamp(9, 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cams(n: u32) -> Vec<(u32, Kind)> {
        (0..n).map(|i| (i, Kind::Camera)).collect()
    }

    fn rects(v: &[(u32, Kind)]) -> Vec<Rect> {
        layout(v).into_iter().filter_map(|(_, r)| r).collect()
    }

    fn r(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn grids() {
        assert!(layout(&[]).is_empty());
        assert_eq!(rects(&cams(1)), vec![r(0, 0, 1280, 720)]);
        assert_eq!(rects(&cams(2)), vec![r(0, 0, 640, 720), r(640, 0, 640, 720)]);
        assert_eq!(rects(&cams(3)), vec![r(0, 0, 640, 360), r(640, 0, 640, 360), r(320, 360, 640, 360)]);
        assert_eq!(rects(&cams(4))[3], r(640, 360, 640, 360));
        assert_eq!(rects(&cams(6)).len(), 6);
        assert_eq!(rects(&cams(9))[8].w, 426);
        let many = layout(&cams(20));
        assert_eq!(many.iter().filter(|(_, r)| r.is_some()).count(), 16);
        assert_eq!(many[15].1, Some(r(960, 540, 320, 180)));
        assert_eq!(many[16].1, None);
    }

    #[test]
    fn screen_share() {
        let v = vec![(1, Kind::Camera), (2, Kind::Screen), (3, Kind::Camera), (4, Kind::Screen)];
        let l = layout(&v);
        assert_eq!(l[1], (2, Some(r(0, 0, 960, 720))));
        assert_eq!(l[0], (1, Some(r(960, 0, 320, 240))));
        assert_eq!(l[2], (3, Some(r(960, 240, 320, 240))));
        assert_eq!(l[3], (4, Some(r(960, 480, 320, 240))));
        let alone = layout(&[(9, Kind::Screen)]);
        assert_eq!(alone[0].1, Some(r(0, 0, 960, 720)));
    }

    #[test]
    fn tiles_stay_inside_and_do_not_overlap() {
        for n in 0..20 {
            let rs = rects(&cams(n));
            for (i, a) in rs.iter().enumerate() {
                assert!(a.x >= 0 && a.y >= 0 && a.x + a.w <= WIDTH && a.y + a.h <= HEIGHT, "{n}: {a:?}");
                assert!(a.w % 2 == 0 && a.h % 2 == 0);
                for b in &rs[i + 1..] {
                    let apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                    assert!(apart, "{n}: {a:?} {b:?}");
                }
            }
        }
    }
}
