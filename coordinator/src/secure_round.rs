//! The checks of a training sum formed under secure aggregation: the
//! weight unmasked with it must be what the coordinator knows, the
//! survivors' declared rows or (DP) their number, or the sum is wrong and
//! no model is made from it. The sums themselves are read by each kind's
//! layout (see [`crate::collect`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use medfed_wire::summed::PooledUpdate;

use crate::collect::Collected;
use crate::run_error::RunError;
use crate::state::Shared;

/// Checks the weight unmasked with a FedAvg/FedProx round's update: in a
/// DP task each member masks `[clipped and noised update..., 1, 0]`, so the
/// sum weighs members equally and the count must come out as the number of
/// survivors (which is public); otherwise the row count travels masked
/// with the update and must come out as the survivors' declared rows.
///
/// # Errors
/// A weight other than the survivors' number or declared rows.
pub(crate) fn check_update<K>(
    shared: &Arc<Shared>,
    round: u32,
    collected: &Collected<PooledUpdate, K>,
) -> Result<(), RunError> {
    let rows = collected.sum.weight;
    if shared.task.differential_privacy.is_some() {
        let count = collected.contributors.len() as f64;
        if (rows - count).abs() > 0.5 {
            return Err(RunError::SecureAggregation {
                step: format!("round {round}"),
                reason: format!(
                    "the unmasked contributor count {rows} is not the {count} survivors: the \
                     sum is wrong and no model is made from it"
                ),
            });
        }
        return Ok(());
    }
    check_rows(shared, round, &collected.contributors, rows)
}

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
