use ndarray::{Array1, aview1};
use proptest::prelude::*;

use super::*;
use crate::counts::{DEFAULT_SCORE_BINS, MAX_SCORE_BINS};
use crate::metrics;
use crate::rng::SplitMix64;

/// A held-out split of `n` rows scored by a fair model: about 40%
/// positives, probabilities `sigmoid(2y - 1 + noise)`, AUC around 0.8.
fn held_out(n: usize, seed: u64) -> (Array1<f64>, Array1<f64>) {
    let mut rng = SplitMix64::new(seed);
    let labels: Array1<f64> = (0..n).map(|_| f64::from(rng.unit() < 0.4)).collect();
    let scores = labels.mapv(|y| {
        let z = 2.0 * y - 1.0 + 4.0 * (rng.unit() - 0.5);
        1.0 / (1.0 + (-z).exp())
    });
    (scores, labels)
}

/// Whether every released count is 0 or at least `min_cell`.
fn releasable(c: &BinaryCounts, min_cell: u64) -> bool {
    [c.positives(), c.negatives(), c.tp, c.fp, c.tn, c.fn_]
        .iter()
        .all(|&v| v == 0 || v >= min_cell)
}

fn nonzero_at_least(hist: &[u64], min_cell: u64) -> bool {
    hist.iter().all(|&c| c == 0 || c >= min_cell)
}

#[test]
fn coarsen_by_hand() {
    // Below 0.5 (bins 0..5): positives in bins 3, 4; negatives 2 in bin 0
    // and 1 in bin 1. From 0.5: positives in 6, 8, 9; negatives in 7, 8.
    let mut c = BinaryCounts {
        n: 10,
        tp: 3,
        fp: 2,
        tn: 3,
        fn_: 2,
        log_loss_sum: 6.0,
        pos_hist: vec![0, 0, 0, 1, 1, 0, 1, 0, 1, 1],
        neg_hist: vec![2, 1, 0, 0, 0, 0, 0, 1, 1, 0],
    };
    let before = c.clone();
    assert!(matches!(
        c.check_cells(2),
        Err(CellError::SmallCell {
            what: "pos_hist",
            min_cell: 2
        })
    ));
    c.coarsen(2).unwrap();
    // Below 0.5 the negatives of bins 0 and 1 and the positives of bins 3
    // and 4 form two runs of one class each, which lose no pair; they are
    // kept at their rows' mean positions, (2 * 0.5 + 1.5) / 3 (bin 0) and
    // (3.5 + 4.5) / 2 (bin 4). From 0.5 the 3 positives cannot be split, and
    // the negatives of bins 7 and 8 cannot stand alone, so bins 5..10 are
    // one run, kept at (6.5 + 7.5 + 2 * 8.5 + 9.5) / 5 = 8.1, bin 8.
    assert_eq!(c.pos_hist, vec![0, 0, 0, 0, 2, 0, 0, 0, 3, 0]);
    assert_eq!(c.neg_hist, vec![3, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    assert_eq!(
        (c.n, c.tp, c.fp, c.tn, c.fn_, c.log_loss_sum),
        (10, 3, 2, 3, 2, 6.0)
    );
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.check_cells(2), Ok(()));
    // All 5 positives beat bin 0's 3 negatives (15 pairs); the 6 pairs
    // sharing bin 8 count 1/2: 18 / 25, against 18.5 / 25 before.
    assert_eq!(c.auc(), Some(18.0 / 25.0));
    assert_eq!(before.auc(), Some(18.5 / 25.0));
    // The ROC curve keeps its point at the threshold: (fp / N, tp / P).
    assert!(c.roc_points().unwrap().contains(&(0.4, 0.6)));
    assert!(before.roc_points().unwrap().contains(&(0.4, 0.6)));
    // Coarsening again changes nothing.
    let once = c.clone();
    c.coarsen(2).unwrap();
    assert_eq!(c, once);
}

#[test]
fn the_auc_of_coarsened_counts_stays_close() {
    // 60 held-out rows in the default 10,000 bins, min_cell = 5, over many
    // draws: every row starts in a bin of its own, so the histograms are
    // merged into runs of at least 5 rows of each class they hold.
    let (mut coarsened, mut largest_change, mut largest_bound) = (0, 0.0f64, 0.0f64);
    let mut total_change = 0.0;
    for seed in 0..300 {
        let (scores, labels) = held_out(60, seed);
        let original =
            BinaryCounts::from_scores(scores.view(), labels.view(), DEFAULT_SCORE_BINS).unwrap();
        let mut c = original.clone();
        let outcome = c.coarsen(5);
        if !releasable(&original, 5) {
            assert!(matches!(outcome, Err(CellError::TooFewRows { .. })));
            assert_eq!(c, original);
            continue;
        }
        outcome.unwrap();
        coarsened += 1;
        assert!(original.check_cells(5).is_err());
        assert_eq!(c.check_cells(5), Ok(()));
        let exact = metrics::roc_auc(scores.view(), labels.view())
            .unwrap()
            .unwrap();
        let (auc, bound) = (c.auc().unwrap(), c.auc_error_bound().unwrap());
        // Still a valid AUC of the same rows, at a coarser resolution.
        assert!((auc - exact).abs() <= bound + 1e-12, "seed {seed}");
        let change = (auc - original.auc().unwrap()).abs();
        largest_change = largest_change.max(change);
        total_change += change;
        largest_bound = largest_bound.max(bound);
    }
    assert!(coarsened >= 150, "only {coarsened} draws could be released");
    // Observed over the 223 draws that can be released: the AUC moves by
    // 0.0097 on average and 0.041 at most, and the bound of the coarsened
    // counts reaches 0.107 (from below 0.001 before).
    let mean_change = total_change / f64::from(coarsened);
    assert!(
        mean_change <= 0.015,
        "AUC changed by {mean_change} on average"
    );
    assert!(largest_change <= 0.05, "AUC changed by {largest_change}");
    assert!(largest_bound <= 0.12, "bound {largest_bound}");
}

#[test]
fn summed_coarsened_counts_still_obey_the_rule() {
    let (mut total, mut exact_total) = (None::<BinaryCounts>, None::<BinaryCounts>);
    let mut seeds = 0..;
    let mut sites = 0;
    while sites < 3 {
        let (scores, labels) = held_out(60, 1000 + seeds.next().unwrap());
        let original =
            BinaryCounts::from_scores(scores.view(), labels.view(), DEFAULT_SCORE_BINS).unwrap();
        let mut c = original.clone();
        if c.coarsen(5).is_err() {
            continue;
        }
        sites += 1;
        for (sum, part) in [(&mut total, c), (&mut exact_total, original)] {
            match sum {
                Some(sum) => sum.merge(&part).unwrap(),
                None => *sum = Some(part),
            }
        }
    }
    let (total, exact_total) = (total.unwrap(), exact_total.unwrap());
    assert_eq!(total.check_cells(5), Ok(()));
    assert_eq!(total.positives(), exact_total.positives());
    assert_eq!(total.tp, exact_total.tp);
    // Rows of different sites can cross within a run's extent, which no
    // bound of the sum can see; in practice the AUC barely moves.
    assert!((total.auc().unwrap() - exact_total.auc().unwrap()).abs() < 0.03);
}

#[test]
fn a_million_bins_of_one_row_each() {
    // 40 rows, each alone in its bin: 10 of each class on each side of 0.5.
    let mut c = BinaryCounts::new(MAX_SCORE_BINS).unwrap();
    for i in 0..40 {
        let bin = if i < 20 { 1000 * i } else { 500_000 + 1000 * i };
        let p = (bin as f64 + 0.5) / MAX_SCORE_BINS as f64;
        c.add(p, f64::from(i % 2 == 0)).unwrap();
    }
    assert_eq!((c.tp, c.fp, c.tn, c.fn_), (10, 10, 10, 10));
    let before = c.clone();
    c.coarsen(5).unwrap();
    assert!(nonzero_at_least(&c.pos_hist, 5) && nonzero_at_least(&c.neg_hist, 5));
    assert!(c.pos_hist.iter().chain(&c.neg_hist).any(|&v| v > 0));
    assert_eq!(
        (c.positives(), c.negatives()),
        (before.positives(), before.negatives())
    );
    assert_eq!(c.check_cells(5), Ok(()));
}

#[test]
fn nothing_to_do_changes_nothing() {
    let (scores, labels) = held_out(60, 7);
    let original = BinaryCounts::from_scores(scores.view(), labels.view(), 1000).unwrap();
    for min_cell in [0, 1] {
        let mut c = original.clone();
        c.coarsen(min_cell).unwrap();
        assert_eq!(c, original);
        assert_eq!(original.check_cells(min_cell), Ok(()));
    }
    // No rows: nothing to hide, even with an odd number of bins.
    for bins in [2, 7, DEFAULT_SCORE_BINS] {
        let empty = BinaryCounts::new(bins).unwrap();
        let mut c = empty.clone();
        c.coarsen(5).unwrap();
        assert_eq!(c, empty);
        assert_eq!(empty.check_cells(5), Ok(()));
    }
}

#[test]
fn counts_that_cannot_be_merged_are_refused_by_rule() {
    // 3 positives: no grouping of bins can hide a class total of 3.
    let p = aview1(&[0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8]);
    let y = aview1(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let original = BinaryCounts::from_scores(p, y, 10).unwrap();
    let mut c = original.clone();
    let err = c.coarsen(5).unwrap_err();
    assert_eq!(
        err,
        CellError::TooFewRows {
            what: CLASS,
            min_cell: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "fewer than min_cell = 5 held-out rows of one class (but at least one): that count is \
         released as it is, so merging bins cannot raise it"
    );
    assert_eq!(c, original);
    assert_eq!(original.check_cells(5), Err(err));
    // 6 positives and 6 negatives, but only 1 of each on the wrong side.
    let p = aview1(&[0.1, 0.1, 0.2, 0.3, 0.4, 0.6, 0.2, 0.6, 0.7, 0.8, 0.9, 0.9]);
    let y = aview1(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let original = BinaryCounts::from_scores(p, y, 10).unwrap();
    let mut c = original.clone();
    let err = c.coarsen(5).unwrap_err();
    assert_eq!(
        err,
        CellError::TooFewRows {
            what: CONFUSION,
            min_cell: 5
        }
    );
    assert!(err.to_string().contains("confusion matrix"));
    assert_eq!(c, original);
}

#[test]
fn the_threshold_must_be_a_bin_edge() {
    let p = aview1(&[0.05; 10]);
    let y = aview1(&[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let mut c = BinaryCounts::from_scores(p, y, 7).unwrap();
    assert_eq!(c.coarsen(5), Err(CellError::ThresholdInsideBin { bins: 7 }));
    assert_eq!(
        c.check_cells(5),
        Err(CellError::ThresholdInsideBin { bins: 7 })
    );
    // Histograms set by hand that disagree with the confusion counts.
    let mut c = BinaryCounts::from_scores(p, y, 10).unwrap();
    c.pos_hist.swap(0, 9);
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(
        c.coarsen(5),
        Err(CellError::ThresholdMismatch { what: "pos_hist" })
    );
    c.pos_hist.swap(0, 9);
    c.neg_hist.swap(0, 9);
    assert_eq!(
        c.check_cells(5),
        Err(CellError::ThresholdMismatch { what: "neg_hist" })
    );
    // Invalid counts are reported as such.
    c.n += 1;
    assert!(matches!(c.coarsen(5), Err(CellError::Invalid(_))));
}

#[test]
fn scores_just_below_the_threshold_fall_below_the_edge() {
    let below = f64::from_bits(0.5f64.to_bits() - 1);
    for bins in [2, 4, 10, 998, DEFAULT_SCORE_BINS, 999_998, MAX_SCORE_BINS] {
        let mut c = BinaryCounts::new(bins).unwrap();
        c.add(below, 1.0).unwrap();
        c.add(0.5, 1.0).unwrap();
        assert_eq!(c.pos_hist[bins / 2 - 1], 1, "{bins} bins");
        assert_eq!(c.pos_hist[bins / 2], 1, "{bins} bins");
    }
}

proptest! {
    #[test]
    fn coarsening_keeps_the_counts_and_meets_the_rule_or_refuses(
        rows in proptest::collection::vec((0.0f64..=1.0, any::<bool>()), 0..150),
        bins in prop_oneof![Just(2usize), Just(10), Just(100), Just(1000)],
        min_cell in 0u64..8,
    ) {
        let p: Array1<f64> = rows.iter().map(|r| r.0).collect();
        let y: Array1<f64> = rows.iter().map(|r| f64::from(u8::from(r.1))).collect();
        let original = BinaryCounts::from_scores(p.view(), y.view(), bins).unwrap();
        let mut c = original.clone();
        match c.coarsen(min_cell) {
            Ok(()) => {
                prop_assert_eq!((c.n, c.tp, c.fp, c.tn, c.fn_), (original.n, original.tp, original.fp, original.tn, original.fn_));
                prop_assert_eq!(c.log_loss_sum, original.log_loss_sum);
                prop_assert_eq!(c.bins(), bins);
                prop_assert_eq!(c.positives(), original.positives());
                prop_assert_eq!(c.negatives(), original.negatives());
                prop_assert!(nonzero_at_least(&c.pos_hist, min_cell));
                prop_assert!(nonzero_at_least(&c.neg_hist, min_cell));
                prop_assert_eq!(c.validate(), Ok(()));
                prop_assert_eq!(c.check_cells(min_cell), Ok(()));
                // Runs stay on their side of the threshold.
                let above: u64 = c.pos_hist[bins / 2..].iter().sum();
                prop_assert_eq!(above, c.tp);
                if let (Some(exact), Some(auc), Some(bound)) = (
                    metrics::roc_auc(p.view(), y.view()).ok().flatten(),
                    c.auc(),
                    c.auc_error_bound(),
                ) {
                    prop_assert!((auc - exact).abs() <= bound + 1e-12);
                }
                let once = c.clone();
                c.coarsen(min_cell).unwrap();
                prop_assert_eq!(c, once);
            }
            Err(err) => {
                prop_assert!(matches!(err, CellError::TooFewRows { .. }), "{}", err);
                prop_assert!(!releasable(&original, min_cell));
                prop_assert_eq!(c, original);
            }
        }
    }
}
