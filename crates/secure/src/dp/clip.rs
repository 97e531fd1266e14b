//! Clipping an update to a bounded L2 norm.
//!
//! Clipping bounds how far one site can move the sum of updates: after
//! clipping to `C`, adding or removing a site's update changes the sum by a
//! vector of norm at most `C`, the sensitivity the Gaussian noise is scaled
//! to (McMahan et al., ICLR 2018, Algorithm 1 "FlatClip").

use super::error::DpError;

/// What [`clip_to_norm`] did to a vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipReport {
    /// The L2 norm before clipping.
    pub norm_before: f64,
    /// The L2 norm after clipping (`<= clip_norm`).
    pub norm_after: f64,
    /// Whether the vector was scaled down.
    pub clipped: bool,
}

/// The L2 norm of `values`, without overflow for large finite coordinates.
///
/// Returns `NaN` or infinity if a coordinate is not finite.
pub fn l2_norm(values: &[f64]) -> f64 {
    let sum_sq: f64 = values.iter().map(|x| x * x).sum();
    if sum_sq.is_finite() {
        return sum_sq.sqrt();
    }
    // Squares overflowed (coordinates above ~1e154) or a coordinate is not
    // finite: rescale by the largest magnitude, which is exact in the
    // exponent and keeps every square at most 1.
    let max = values.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    if !max.is_finite() || max == 0.0 {
        return sum_sq.sqrt();
    }
    let scaled: f64 = values.iter().map(|x| (x / max) * (x / max)).sum();
    max * scaled.sqrt()
}

/// Checks that `clip_norm` can serve as a sensitivity: finite and positive.
pub(crate) fn check_clip_norm(clip_norm: f64) -> Result<(), DpError> {
    if clip_norm.is_finite() && clip_norm > 0.0 {
        Ok(())
    } else {
        Err(DpError::InvalidParameter {
            field: "clip_norm",
            expected: "a finite number > 0",
            got: clip_norm,
        })
    }
}

/// Scales `values` in place so that its L2 norm is at most `clip_norm`; a
/// vector already within the bound is left bit-for-bit unchanged.
///
/// The bound is checked on the result as computed in floating point, not
/// only in exact arithmetic: if rounding leaves the scaled norm a hair above
/// `clip_norm`, the vector is shrunk a few ulps more, because the privacy
/// guarantee rests on the sensitivity never exceeding `clip_norm`.
///
/// # Errors
/// [`DpError::InvalidParameter`] if `clip_norm` is not finite and positive;
/// [`DpError::NonFiniteCoordinate`] naming the first NaN or infinite
/// coordinate (the vector is then left unchanged).
pub fn clip_to_norm(values: &mut [f64], clip_norm: f64) -> Result<ClipReport, DpError> {
    check_clip_norm(clip_norm)?;
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(DpError::NonFiniteCoordinate { index, value });
    }
    let norm_before = l2_norm(values);
    if norm_before <= clip_norm {
        return Ok(ClipReport {
            norm_before,
            norm_after: norm_before,
            clipped: false,
        });
    }
    let mut factor = clip_norm / norm_before;
    let original: Vec<f64> = values.to_vec();
    let mut norm_after;
    // Each pass shrinks the factor by a relative 2^-40, far more than the
    // rounding error of a norm, so one extra pass is all that is ever needed;
    // the bound on passes only guards against a logic error looping forever.
    for _ in 0..8 {
        for (v, o) in values.iter_mut().zip(&original) {
            *v = o * factor;
        }
        norm_after = l2_norm(values);
        if norm_after <= clip_norm {
            return Ok(ClipReport {
                norm_before,
                norm_after,
                clipped: true,
            });
        }
        factor *= 1.0 - f64::powi(2.0, -40);
    }
    // Unreachable in practice (see above); fall back to the zero vector,
    // which always satisfies the bound.
    values.iter_mut().for_each(|v| *v = 0.0);
    Ok(ClipReport {
        norm_before,
        norm_after: 0.0,
        clipped: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_of_huge_coordinates_does_not_overflow() {
        let v = [3e200, 4e200];
        let n = l2_norm(&v);
        assert!((n / 5e200 - 1.0).abs() < 1e-15, "{n}");
    }

    #[test]
    fn clipping_huge_vector_reaches_bound() {
        let mut v = [3e200, -4e200, 1.0];
        let report = clip_to_norm(&mut v, 2.0).unwrap();
        assert!(report.clipped);
        assert!(l2_norm(&v) <= 2.0);
        assert!(l2_norm(&v) > 2.0 * (1.0 - 1e-9));
    }

    /// Found by the property test: scaling by `clip / norm` alone leaves
    /// this vector's computed norm above the clip norm.
    #[test]
    fn rounding_overshoot_of_naive_scaling_is_corrected() {
        let original = [
            -895028.5759321759,
            0.0,
            0.0,
            0.0,
            -28039.508036452436,
            9023.311914814496,
            0.0,
            -796004.4869260956,
            -192569.30068725915,
            -457283.34751731757,
            843640.8278974557,
            -916631.8486188747,
            245251.2847741776,
            0.0,
            -257322.27160695152,
            0.0,
            -330680.63904407027,
            -577342.4126146693,
            0.0,
            0.0,
            882451.9270648715,
            136398.62309847586,
            -779745.4788176167,
            0.0,
            714521.0154863393,
            -90490.68135301891,
            0.0,
            -251204.99610819455,
            0.0,
            0.0,
            -789261.1677529233,
            0.0,
        ];
        let clip = 901.6248458708834;
        let factor = clip / l2_norm(&original);
        let naive: Vec<f64> = original.iter().map(|x| x * factor).collect();
        assert!(l2_norm(&naive) > clip, "case no longer overshoots");
        let mut v = original;
        clip_to_norm(&mut v, clip).unwrap();
        assert!(l2_norm(&v) <= clip);
    }

    #[test]
    fn non_finite_coordinate_is_named_and_vector_untouched() {
        let mut v = [1.0, f64::NAN, 2.0];
        let err = clip_to_norm(&mut v, 1.0).unwrap_err();
        assert!(matches!(err, DpError::NonFiniteCoordinate { index: 1, .. }));
        assert_eq!(v[0], 1.0);
        assert_eq!(v[2], 2.0);
    }

    #[test]
    fn bad_clip_norm_is_refused() {
        for c in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(clip_to_norm(&mut [1.0], c).is_err(), "{c}");
        }
    }
}
