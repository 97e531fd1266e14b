//! Repeated measurements and their summary: median, minimum and maximum.

/// The values of one figure over its repeats.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    values: Vec<f64>,
}

impl Sample {
    /// A sample of the given values.
    pub fn of(values: Vec<f64>) -> Sample {
        Sample { values }
    }

    /// Adds one repeat.
    pub fn push(&mut self, value: f64) {
        self.values.push(value);
    }

    /// Number of repeats.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Repeat `i` (NaN past the end).
    pub fn get(&self, i: usize) -> f64 {
        self.values.get(i).copied().unwrap_or(f64::NAN)
    }

    /// The median (the mean of the middle two for an even count); NaN when
    /// empty.
    pub fn median(&self) -> f64 {
        median(&self.values)
    }

    /// The smallest value; NaN when empty.
    pub fn min(&self) -> f64 {
        self.values
            .iter()
            .copied()
            .reduce(f64::min)
            .unwrap_or(f64::NAN)
    }

    /// The largest value; NaN when empty.
    pub fn max(&self) -> f64 {
        self.values
            .iter()
            .copied()
            .reduce(f64::max)
            .unwrap_or(f64::NAN)
    }
}

/// The median of `values` (the mean of the middle two for an even count);
/// NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Sample::of(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s.median(), 2.5);
        assert_eq!(s.min(), 1.0);
        assert_eq!(s.max(), 10.0);
        assert_eq!(median(&[5.0, 1.0, 4.0]), 4.0);
        assert!(Sample::default().median().is_nan());
    }
}
