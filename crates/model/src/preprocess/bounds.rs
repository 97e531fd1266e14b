//! Coarse, outward-rounded column ranges. A column's exact minimum and
//! maximum are values of single records, so a site never sends them: it
//! sends the range widened to the nearest 1, 2 or 5 times a power of ten
//! (e.g. [86.4, 603.0] becomes [50, 1000]). Min-max scaling and median
//! histograms work as well on a range that contains every value.

/// `x` rounded away from zero to the next number of the form 1, 2 or 5
/// times a power of ten (zero stays zero).
fn away_from_zero(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let a = x.abs();
    let exponent = a.log10().floor();
    let mut rounded = f64::INFINITY;
    for step in [exponent - 1.0, exponent, exponent + 1.0] {
        let decade = 10f64.powf(step);
        for mantissa in [1.0, 2.0, 5.0] {
            let candidate = mantissa * decade;
            if candidate >= a && candidate < rounded {
                rounded = candidate;
            }
        }
    }
    rounded.copysign(x)
}

/// `x` rounded towards zero to the previous number of the form 1, 2 or 5
/// times a power of ten (zero stays zero; magnitudes below the smallest
/// such number become zero).
fn towards_zero(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let a = x.abs();
    let exponent = a.log10().floor();
    let mut rounded = 0.0f64;
    for step in [exponent - 1.0, exponent, exponent + 1.0] {
        let decade = 10f64.powf(step);
        for mantissa in [1.0, 2.0, 5.0] {
            let candidate = mantissa * decade;
            if candidate <= a && candidate > rounded {
                rounded = candidate;
            }
        }
    }
    rounded.copysign(x)
}

/// Widens `[min, max]` outward to coarse bounds (see the module docs): the
/// result contains the input range and its ends are 0 or ±{1, 2, 5}·10^k.
pub fn coarse_bounds(min: f64, max: f64) -> (f64, f64) {
    let low = if min >= 0.0 {
        towards_zero(min)
    } else {
        away_from_zero(min)
    };
    let high = if max >= 0.0 {
        away_from_zero(max)
    } else {
        towards_zero(max)
    };
    (low.min(min), high.max(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, proptest};

    fn is_coarse(x: f64) -> bool {
        if x == 0.0 {
            return true;
        }
        let a = x.abs();
        let decade = 10f64.powf(a.log10().floor());
        let mantissa = a / decade;
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .any(|m| (mantissa - m).abs() < 1e-9)
    }

    #[test]
    fn by_hand() {
        assert_eq!(coarse_bounds(86.4, 603.0), (50.0, 1000.0));
        assert_eq!(coarse_bounds(0.0, 1.0), (0.0, 1.0));
        assert_eq!(coarse_bounds(-2.6, 6.2), (-5.0, 10.0));
        assert_eq!(coarse_bounds(-48_207.913_7, -3.1), (-50_000.0, -2.0));
        assert_eq!(coarse_bounds(0.91827, 73_519.286_4), (0.5, 100_000.0));
    }

    proptest! {
        #[test]
        fn bounds_contain_the_range_and_are_coarse(a in -1e9f64..1e9, b in -1e9f64..1e9) {
            let (min, max) = (a.min(b), a.max(b));
            let (low, high) = coarse_bounds(min, max);
            prop_assert!(low <= min && max <= high, "[{low}, {high}] vs [{min}, {max}]");
            prop_assert!(is_coarse(low) && is_coarse(high), "{low} {high}");
        }
    }
}
