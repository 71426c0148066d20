//! Bandwidth allocation for one subscriber, sans-IO: given what its
//! connection carries (str0m's TWCC estimate) and the video tracks it
//! receives, which layer of each it gets.
//!
//! Order of precedence: audio is never touched (its rate is taken off the
//! estimate first); then screen shares; then tiles the subscriber has on
//! stage (pinned or large); then the active speaker; then everyone else,
//! larger tiles first. Every visible track first gets its lowest layer that
//! is being sent, in that order, while the budget lasts — a track for which
//! even that does not fit is paused (the subscriber's tile says so). Then,
//! in the same order, each track moves up to the best layer that fits
//! what is left and that its tile can show (a 320-pixel tile gets no
//! 1280-pixel layer). A hidden tile costs nothing.

/// Layers' rates in bit/s, lowest first; `None` for a layer not being sent.
pub type LayerRates = [Option<u64>; crate::simulcast::MAX_LAYERS];

/// A layer that has sent too little to measure still costs at least this.
pub const MIN_LAYER_RATE: u64 = 30_000;
/// Share of the estimate given to media; the rest absorbs the estimate's
/// error and retransmissions.
pub const USABLE_PERCENT: u64 = 90;

/// How much one video track matters to this subscriber, most first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A shared screen.
    Screen,
    /// On the subscriber's stage (pinned, or the large tile).
    Stage,
    /// The room's active speaker.
    Speaker,
    /// Everyone else.
    Other,
}

/// One video track as this subscriber would like it.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// What it is to the subscriber.
    pub priority: Priority,
    /// Its tile's area in device pixels (larger first within a priority);
    /// `None` when the tile is hidden.
    pub area: Option<u64>,
    /// The highest layer its tile can show.
    pub max_layer: u8,
    /// What each of its layers costs now.
    pub rates: LayerRates,
    /// Whether it may be paused for bandwidth. A track sent without
    /// simulcast has nothing lower to fall back on: it is kept (and takes
    /// its share of the budget first), so a wrong estimate can never
    /// freeze a publisher that did not offer layers.
    pub pausable: bool,
}

/// The layers chosen (`None` = paused), in the order of `wants`; the rate
/// they add up to; the rate with the next step up taken (what to probe
/// for first; `rate` when there is no step up); and the rate the
/// subscriber would take if it had the bandwidth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Per want: its layer, or `None` (paused).
    pub layers: Vec<Option<u8>>,
    /// Bit/s of the chosen layers.
    pub rate: u64,
    /// Bit/s with the next step up taken.
    pub next: u64,
    /// Bit/s of the best every visible tile could show.
    pub desired: u64,
}

/// The visible wants, most important first.
fn in_order(wants: &[Want]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..wants.len()).filter(|i| wants[*i].area.is_some()).collect();
    order.sort_by_key(|i| (wants[*i].priority, std::cmp::Reverse(wants[*i].area)));
    order
}

/// The most important visible want, if any: the one picture a viewer on a
/// lossy link keeps (participant.rs).
pub fn most_important(wants: &[Want]) -> Option<usize> {
    in_order(wants).first().copied()
}

/// Allocates `estimate` bit/s (`None`: not known yet, everything fits)
/// after `audio` bit/s of audio.
pub fn allocate(estimate: Option<u64>, audio: u64, wants: &[Want]) -> Allocation {
    let mut budget = estimate.map(|e| (e * USABLE_PERCENT / 100).saturating_sub(audio));
    let order = in_order(wants);
    let rate = |w: &Want, l: usize| w.rates[l].map(|r| r.max(MIN_LAYER_RATE));
    let fits = |budget: Option<u64>, cost: u64| budget.is_none_or(|b| cost <= b);
    let mut layers = vec![None; wants.len()];
    let mut desired = 0;
    // Everyone visible at the lowest layer that is sent, in order.
    for &i in &order {
        let w = &wants[i];
        let Some(low) = (0..w.rates.len()).find(|l| w.rates[*l].is_some()) else { continue };
        let cost = rate(w, low).unwrap_or(0);
        let best = (low..=usize::from(w.max_layer).max(low)).rev().find_map(|l| rate(w, l)).unwrap_or(cost);
        desired += best;
        if fits(budget, cost) || !w.pausable {
            budget = budget.map(|b| b.saturating_sub(cost));
            layers[i] = Some(low as u8);
        }
    }
    // Then up, in the same order, as far as the tile and the budget allow.
    for &i in &order {
        let w = &wants[i];
        let Some(now) = layers[i] else { continue };
        let now_cost = rate(w, usize::from(now)).unwrap_or(0);
        let top = usize::from(w.max_layer).min(w.rates.len() - 1);
        let better = (usize::from(now) + 1..=top)
            .rev()
            .find(|l| rate(w, *l).is_some_and(|c| fits(budget.map(|b| b + now_cost), c)));
        if let Some(l) = better {
            let cost = rate(w, l).unwrap_or(0);
            budget = budget.map(|b| b + now_cost - cost);
            layers[i] = Some(l as u8);
        }
    }
    let total = layers.iter().zip(wants).filter_map(|(l, w)| l.and_then(|l| rate(w, usize::from(l)))).sum();
    // The first track, in order, that could go one layer up.
    let step = order.iter().find_map(|&i| {
        let w = &wants[i];
        let (from, cost) = match layers[i] {
            Some(l) => (usize::from(l) + 1, rate(w, usize::from(l)).unwrap_or(0)),
            None => (0, 0),
        };
        let top = usize::from(w.max_layer).min(w.rates.len() - 1);
        (from..=top).find_map(|l| rate(w, l)).map(|c| c.saturating_sub(cost))
    });
    Allocation { layers, rate: total, next: total + step.unwrap_or(0), desired }
}

/// The highest layer worth sending to a tile `width` device pixels wide:
/// the smallest layer at least that wide (widths lowest first; unknown
/// widths are taken to halve per layer down from 1280).
pub fn max_layer_for(width: u32, widths: &[Option<u32>; crate::simulcast::MAX_LAYERS]) -> u8 {
    let top = widths.len() - 1;
    (0..=top)
        .find(|l| {
            let w = widths[*l].unwrap_or(1280 >> (top - l));
            w >= width
        })
        .unwrap_or(top) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: LayerRates = [Some(150_000), Some(500_000), Some(1_500_000)];

    fn want(priority: Priority, area: u64) -> Want {
        Want { priority, area: Some(area), max_layer: 2, rates: THREE, pausable: true }
    }

    #[test]
    fn a_track_without_layers_is_never_paused() {
        let mut single = want(Priority::Other, 1);
        single.rates = [Some(1_000_000), None, None];
        single.pausable = false;
        let a = allocate(Some(300_000), 0, &[single, want(Priority::Other, 1)]);
        assert_eq!(a.layers, vec![Some(0), None], "it keeps its one layer; the simulcast one pauses");
    }

    #[test]
    fn the_most_important_visible_track_is_the_screen_then_the_stage_then_the_largest() {
        let mut hidden = want(Priority::Screen, 1);
        hidden.area = None;
        let wants = [hidden, want(Priority::Other, 640 * 360), want(Priority::Speaker, 320 * 180)];
        assert_eq!(most_important(&wants), Some(2), "a hidden screen is not shown; the speaker is");
        let wants = [want(Priority::Other, 320 * 180), want(Priority::Other, 640 * 360)];
        assert_eq!(most_important(&wants), Some(1), "among equals, the largest tile");
        assert_eq!(most_important(&[]), None);
    }

    #[test]
    fn unknown_estimate_gives_everyone_the_best_their_tile_shows() {
        let mut small = want(Priority::Other, 320 * 180);
        small.max_layer = 0;
        let a = allocate(None, 0, &[want(Priority::Other, 1280 * 720), small]);
        assert_eq!(a.layers, vec![Some(2), Some(0)]);
    }

    #[test]
    fn a_weak_link_gets_low_layers_and_the_speaker_comes_first() {
        // 300 kbit/s: 270 usable, 40 audio → 230 for video.
        let wants = [want(Priority::Other, 100), want(Priority::Speaker, 100), want(Priority::Other, 50)];
        let a = allocate(Some(300_000), 40_000, &wants);
        assert_eq!(a.layers, vec![None, Some(0), None], "only the speaker's lowest layer fits");
        assert_eq!(a.rate, 150_000);
        assert_eq!(a.next, 500_000, "probe for the speaker's next layer first");
        assert!(a.desired > a.rate, "and it would take more");
    }

    #[test]
    fn screen_share_first_then_stage_then_speaker() {
        let wants = [
            want(Priority::Speaker, 100),
            want(Priority::Other, 100),
            want(Priority::Screen, 100),
            want(Priority::Stage, 100),
        ];
        // 2.3 Mbit/s usable: all four at the lowest (600k), then the screen
        // to the top (+1350k), the stage to the middle (+350k).
        let a = allocate(Some(2_555_556), 0, &wants);
        assert_eq!(a.layers, vec![Some(0), Some(0), Some(2), Some(1)]);
    }

    #[test]
    fn plenty_gives_everyone_the_top_layer() {
        let wants = [want(Priority::Other, 1), want(Priority::Other, 2), want(Priority::Speaker, 3)];
        let a = allocate(Some(10_000_000), 100_000, &wants);
        assert_eq!(a.layers, vec![Some(2); 3]);
        assert_eq!(a.rate, 4_500_000);
        assert_eq!(a.next, a.rate, "nothing to probe for");
        assert_eq!(a.desired, 4_500_000);
    }

    #[test]
    fn hidden_tiles_cost_nothing() {
        let mut hidden = want(Priority::Speaker, 0);
        hidden.area = None;
        let a = allocate(Some(1_800_000), 0, &[hidden, want(Priority::Other, 1)]);
        assert_eq!(a.layers, vec![None, Some(2)]);
    }

    #[test]
    fn layers_not_sent_are_skipped() {
        // The publisher's own uplink dropped its top layer.
        let mut w = want(Priority::Other, 1);
        w.rates = [Some(150_000), Some(500_000), None];
        assert_eq!(allocate(None, 0, &[w]).layers, vec![Some(1)]);
        w.rates = [None, None, Some(1_500_000)];
        assert_eq!(allocate(Some(1_000_000), 0, &[w]).layers, vec![None], "only a layer that does not fit");
    }

    #[test]
    fn tile_width_picks_the_smallest_layer_wide_enough() {
        let known = [Some(320), Some(640), Some(1280)];
        assert_eq!(max_layer_for(200, &known), 0);
        assert_eq!(max_layer_for(320, &known), 0);
        assert_eq!(max_layer_for(500, &known), 1);
        assert_eq!(max_layer_for(1000, &known), 2);
        assert_eq!(max_layer_for(4000, &known), 2);
        assert_eq!(max_layer_for(400, &[None, None, None]), 1, "unknown: 320/640/1280");
    }
}
