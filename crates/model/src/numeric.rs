//! Numerically careful primitives shared by training, metrics and counts.

/// Variance counts as zero when it is at most this fraction of the mean of
/// squares. Sums of squares carry rounding error of roughly `n * f64::EPSILON`
/// relative to their size, so a truly constant column can show a tiny positive
/// variance; this threshold (a standard deviation below a millionth of the
/// root mean square) absorbs that without flagging real features.
pub(crate) const NEGLIGIBLE_VARIANCE: f64 = 1e-12;

/// Whether a sum of squared deviations `ss_dev` is negligible next to the
/// plain sum of squares `ss` over the same values. NaN counts as negligible
/// so callers never divide by it.
#[inline]
pub(crate) fn negligible_variance(ss_dev: f64, ss: f64) -> bool {
    ss_dev.is_nan() || ss_dev <= NEGLIGIBLE_VARIANCE * ss
}

/// Probabilities are clamped to `[PROBABILITY_CLAMP, 1 - PROBABILITY_CLAMP]`
/// before taking logs, so a confident wrong prediction costs about 34.5
/// instead of infinity.
pub(crate) const PROBABILITY_CLAMP: f64 = 1e-15;

/// The logistic function, without overflow for any `z`.
#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    // exp of a non-positive number never overflows; NaN takes the else
    // branch and stays NaN.
    let e = (-z.abs()).exp();
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// Log-loss and residual `sigmoid(z) - y` of one row with label `y` in {0, 1}.
///
/// The loss is `softplus(z) - y*z`, which for a 0/1 label equals
/// `softplus(s*z)` with `s = 1 - 2y`. Computing it as
/// `max(s*z, 0) + ln(1 + exp(-|z|))` avoids both overflow and the
/// cancellation of subtracting two large numbers, and shares one `exp` with
/// the sigmoid.
#[inline]
pub(crate) fn logistic_terms(z: f64, y: f64) -> (f64, f64) {
    let e = (-z.abs()).exp();
    let margin = (1.0 - 2.0 * y) * z;
    // `f64::max` would turn a NaN margin into 0; `e` is NaN too in that
    // case, so the loss still comes out NaN and the caller notices.
    let loss = margin.max(0.0) + e.ln_1p();
    let p = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (loss, p - y)
}

/// [`logistic_terms`] plus the row's curvature `sigmoid(z) * (1 - sigmoid(z))`,
/// the second derivative of its log-loss with respect to `z`.
///
/// The curvature is computed as `e / (1 + e)^2` with `e = exp(-|z|)`, which
/// is exact to rounding for every `z`, where `p * (1 - p)` would lose all
/// precision once `p` rounds to 1.
#[inline]
pub(crate) fn logistic_newton_terms(z: f64, y: f64) -> (f64, f64, f64) {
    let (loss, residual) = logistic_terms(z, y);
    let e = (-z.abs()).exp();
    let one_plus = 1.0 + e;
    (loss, residual, e / (one_plus * one_plus))
}

/// Log-loss of one probability against a 0/1 label, clamped.
#[inline]
pub(crate) fn clamped_log_loss(p: f64, y: f64) -> f64 {
    let p = p.clamp(PROBABILITY_CLAMP, 1.0 - PROBABILITY_CLAMP);
    if y == 1.0 { -p.ln() } else { -(1.0 - p).ln() }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;

    #[test]
    fn sigmoid_is_stable_and_symmetric() {
        assert_relative_eq!(sigmoid(0.0), 0.5);
        assert_relative_eq!(sigmoid(2.0), 1.0 / (1.0 + (-2.0f64).exp()), epsilon = 1e-15);
        assert_relative_eq!(sigmoid(-2.0) + sigmoid(2.0), 1.0, epsilon = 1e-15);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert!(sigmoid(f64::NAN).is_nan());
    }

    #[test]
    fn logistic_terms_match_the_naive_formula_where_it_is_safe() {
        for &z in &[-5.0f64, -0.3, 0.0, 0.7, 4.0] {
            for &y in &[0.0, 1.0] {
                let p = 1.0 / (1.0 + (-z).exp());
                let naive = -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
                let (loss, r) = logistic_terms(z, y);
                assert_relative_eq!(loss, naive, epsilon = 1e-12);
                assert_relative_eq!(r, p - y, epsilon = 1e-12);
            }
        }
    }

    #[test]
    fn logistic_terms_at_extreme_margins() {
        // Correct and confident: loss ~ exp(-800), which is 0 in f64.
        assert_eq!(logistic_terms(800.0, 1.0), (0.0, 0.0));
        assert_eq!(logistic_terms(-800.0, 0.0), (0.0, 0.0));
        // Wrong and confident: loss is |z| exactly, residual is +-1.
        assert_eq!(logistic_terms(800.0, 0.0), (800.0, 1.0));
        assert_eq!(logistic_terms(-800.0, 1.0), (800.0, -1.0));
        assert!(logistic_terms(f64::NAN, 1.0).0.is_nan());
    }

    #[test]
    fn curvature_is_p_times_one_minus_p() {
        for &z in &[-30.0f64, -2.0, 0.0, 0.5, 3.0, 30.0] {
            let p = sigmoid(z);
            let (loss, r, w) = logistic_newton_terms(z, 1.0);
            assert_eq!((loss, r), logistic_terms(z, 1.0));
            assert_relative_eq!(w, p * (1.0 - p), max_relative = 1e-12);
        }
        assert_relative_eq!(logistic_newton_terms(0.0, 0.0).2, 0.25);
        // Far out, p * (1 - p) is 0 in f64 but the curvature is not.
        assert!(logistic_newton_terms(40.0, 1.0).2 > 0.0);
        assert_eq!(logistic_newton_terms(800.0, 1.0).2, 0.0);
    }

    #[test]
    fn clamped_log_loss_is_finite_at_the_ends() {
        assert_relative_eq!(clamped_log_loss(0.0, 1.0), -(1e-15f64).ln(), epsilon = 1e-9);
        assert_relative_eq!(
            clamped_log_loss(0.25, 0.0),
            -(0.75f64).ln(),
            epsilon = 1e-15
        );
        assert!(clamped_log_loss(1.0, 0.0).is_finite());
    }

    #[test]
    fn negligible_variance_rule() {
        assert!(negligible_variance(0.0, 0.0));
        assert!(negligible_variance(1e-20, 1.0));
        assert!(!negligible_variance(1e-6, 1.0));
        assert!(negligible_variance(f64::NAN, 1.0));
        assert!(negligible_variance(-1e-9, 1.0));
    }
}
