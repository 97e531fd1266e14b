//! The guard of a secure task: no request for anything computed from the
//! rows is answered in clear.

use medfed_wire::{Instruction, Step, Task};

/// Refuses a request for anything computed from the rows in clear when the
/// task uses secure aggregation: whatever the coordinator asks, only
/// masked inputs leave the node.
///
/// # Errors
/// A statistics, histogram, training, Newton, normal-equation, baseline or
/// evaluation step outside secure aggregation in such a task, naming it.
pub fn refuse_in_clear(task: &Task, step: &Step) -> anyhow::Result<()> {
    let from_rows = matches!(
        step.instruction,
        Instruction::CollectStatistics
            | Instruction::CollectHistograms { .. }
            | Instruction::Train { .. }
            | Instruction::Newton { .. }
            | Instruction::Normal { .. }
            | Instruction::Baseline { .. }
            | Instruction::Evaluate { .. }
    );
    if task.secure_aggregation.is_some() && from_rows {
        anyhow::bail!(
            "the coordinator asked for {} in clear (step {}), but task {} uses secure \
             aggregation: refused, nothing sent (only masked inputs leave this node)",
            step.kind(),
            step.step,
            task.task_id
        );
    }
    Ok(())
}
