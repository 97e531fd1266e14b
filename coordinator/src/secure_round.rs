//! The check of a training sum formed under secure aggregation: the row
//! count unmasked with it must be the survivors' declared rows, or the sum
//! is wrong and no model is made from it. (In a DP task the weight is the
//! number of survivors instead, checked by
//! [`Dp`](crate::algorithm::dp::Dp).) The sums themselves are read by each
//! kind's layout (see [`crate::collect`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::run_error::RunError;
use crate::state::Shared;

/// The row count unmasked with a sum must be positive and equal the
/// survivors' declared training rows (when all declared them, or, under
/// secure aggregation, when they are the statistics passes' members), or
/// the sum is wrong and no model is made from it.
///
/// # Errors
/// A row count other than the declared one, or one that is not positive.
pub(crate) fn check_rows(
    shared: &Arc<Shared>,
    round: u32,
    survivors: &BTreeSet<String>,
    rows: f64,
) -> Result<(), RunError> {
    let failed = |reason: String| RunError::SecureAggregation {
        step: format!("round {round}"),
        reason,
    };
    let declared: Option<u64> = {
        let state = shared.lock();
        let declared: Option<u64> = survivors
            .iter()
            .map(|m| state.declared_rows.get(m).copied())
            .sum();
        // Under secure aggregation no member declares its own rows, but
        // the statistics passes summed them over their members.
        declared.or_else(|| {
            state
                .pooled_rows
                .as_ref()
                .filter(|(members, _)| members == survivors)
                .map(|(_, rows)| *rows)
        })
    };
    if let Some(declared) = declared
        && (rows - declared as f64).abs() > 0.5
    {
        return Err(failed(format!(
            "the unmasked row count {rows} is not the survivors' declared {declared} rows: \
             the sum is wrong and no model is made from it"
        )));
    }
    if rows < 0.5 {
        return Err(failed(format!(
            "the unmasked row count {rows} is not positive"
        )));
    }
    Ok(())
}
