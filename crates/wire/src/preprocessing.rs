//! Checked conversions of the preprocessing that travels between the
//! coordinator and the nodes: the per-column specs of a task, the column
//! summaries and histograms a node sends, and the fitted preprocessor the
//! coordinator publishes. These nested model types travel as JSON text
//! inside their protobuf messages; they are parsed (strictly: unknown
//! fields are refused) and validated here, once, against the task.

use medfed_model::preprocess::{ColumnHistogram, ColumnSummary, HistogramPlan};
use medfed_model::{ColumnSpec, FittedPreprocessor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::convert::WireError;
use crate::message::{HistogramReport, Task};
use crate::pb;

type Result<T> = std::result::Result<T, WireError>;

/// Most histogram bins, over all columns, a node allocates for one plan.
pub const MAX_HISTOGRAM_CELLS: u64 = 1 << 24;

/// JSON text of a value whose serialisation cannot fail (plain structs of
/// numbers, strings and vectors).
pub(crate) fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: DeserializeOwned>(field: &'static str, text: &str) -> Result<T> {
    if text.is_empty() {
        return Err(WireError::MissingField { field });
    }
    serde_json::from_str(text).map_err(|e| WireError::Invalid {
        field,
        reason: format!("not the expected JSON: {e}"),
    })
}

fn invalid(field: &'static str, reason: impl std::fmt::Display) -> WireError {
    WireError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

/// Parses and checks a task's column specs: one per feature, same names, in
/// order, each valid.
///
/// # Errors
/// Bad JSON, a count or name that does not match the features, or an
/// invalid spec (named).
pub fn columns_from_json(text: &str, features: &[String]) -> Result<Vec<ColumnSpec>> {
    let field = "task.columns";
    let columns: Vec<ColumnSpec> = from_json(field, text)?;
    check_columns(&columns, features)?;
    Ok(columns)
}

/// Checks that `columns` are one valid spec per feature, in feature order.
///
/// # Errors
/// See [`columns_from_json`].
pub fn check_columns(columns: &[ColumnSpec], features: &[String]) -> Result<()> {
    let field = "task.columns";
    if columns.len() != features.len() {
        return Err(WireError::Dimension {
            field,
            expected: features.len(),
            got: columns.len(),
        });
    }
    for (i, (spec, feature)) in columns.iter().zip(features).enumerate() {
        if &spec.name != feature {
            return Err(invalid(
                field,
                format!(
                    "column {i} is specified as {:?}, but feature {i} is {feature:?}",
                    spec.name
                ),
            ));
        }
    }
    medfed_model::preprocess::validate_specs(columns).map_err(|e| invalid(field, e))
}

/// The published preprocessing for the wire.
pub fn preprocessing_to_pb(preprocessor: &FittedPreprocessor) -> pb::Preprocessing {
    pb::Preprocessing {
        json: to_json(preprocessor),
    }
}

/// Parses and checks the published preprocessing: valid, one fitted column
/// per task column with the same name, and as wide as the task's model.
///
/// # Errors
/// Missing, bad JSON, or a preprocessor that does not fit the task.
pub fn preprocessing_from_pb(
    field: &'static str,
    preprocessing: Option<pb::Preprocessing>,
    task: &Task,
) -> Result<FittedPreprocessor> {
    let pb::Preprocessing { json } = preprocessing.ok_or(WireError::MissingField { field })?;
    let fitted: FittedPreprocessor = from_json(field, &json)?;
    fitted.validate().map_err(|e| invalid(field, e))?;
    if fitted.columns.len() != task.columns.len() {
        return Err(WireError::Dimension {
            field,
            expected: task.columns.len(),
            got: fitted.columns.len(),
        });
    }
    if let Some((i, _)) = fitted
        .columns
        .iter()
        .zip(&task.columns)
        .enumerate()
        .find(|(_, (f, s))| f.name != s.name)
    {
        return Err(invalid(
            field,
            format!("column {i} does not match the task's"),
        ));
    }
    if fitted.width() + 1 != task.dimension() {
        return Err(WireError::Dimension {
            field,
            expected: task.dimension() - 1,
            got: fitted.width(),
        });
    }
    Ok(fitted)
}

/// Parses and checks a node's column summaries: one per task column, each
/// consistent with its spec and with the training rows the node reports.
///
/// # Errors
/// Bad JSON, a wrong count, or a summary that cannot come from real rows.
pub fn summaries_from_json(text: &str, task: &Task, train_rows: u64) -> Result<Vec<ColumnSummary>> {
    let field = "statistics.summaries";
    let summaries: Vec<ColumnSummary> = from_json(field, text)?;
    if summaries.len() != task.columns.len() {
        return Err(WireError::Dimension {
            field,
            expected: task.columns.len(),
            got: summaries.len(),
        });
    }
    for (i, (summary, spec)) in summaries.iter().zip(&task.columns).enumerate() {
        summary
            .validate(spec)
            .map_err(|e| invalid(field, format!("column {i}: {e}")))?;
        if summary.rows != train_rows {
            return Err(invalid(
                field,
                format!(
                    "column {i} summarises {} rows, but the report has {train_rows} training rows",
                    summary.rows
                ),
            ));
        }
    }
    Ok(summaries)
}

/// The histogram plan for the wire.
pub fn plan_to_pb(plan: &HistogramPlan) -> pb::CollectHistograms {
    pb::CollectHistograms {
        plan_json: to_json(plan),
    }
}

/// Parses and checks a histogram plan against the task's columns.
///
/// # Errors
/// Bad JSON or an invalid plan.
pub fn plan_from_pb(request: pb::CollectHistograms, task: &Task) -> Result<HistogramPlan> {
    let field = "histograms.plan";
    let pb::CollectHistograms { plan_json } = request;
    let plan: HistogramPlan = from_json(field, &plan_json)?;
    plan.validate(task.columns.len())
        .map_err(|e| invalid(field, e))?;
    // The node allocates every bin: bound the total, whatever the plan says.
    let cells = plan.ranges.iter().flatten().count() as u64 * plan.bins as u64;
    if cells > MAX_HISTOGRAM_CELLS {
        return Err(WireError::TooLarge {
            field,
            max: MAX_HISTOGRAM_CELLS,
            got: cells,
        });
    }
    Ok(plan)
}

/// A node's histograms for the wire.
pub fn histograms_to_pb(report: &HistogramReport, task_id: &str) -> pb::HistogramReport {
    pb::HistogramReport {
        task_id: task_id.to_owned(),
        step: report.step,
        histograms_json: to_json(&report.histograms),
    }
}

/// Parses and checks a node's histograms against the plan it answers: a
/// histogram exactly where the plan has a range, with the plan's range and
/// bin count.
///
/// # Errors
/// Wrong task, bad JSON, or histograms that do not follow the plan.
pub fn histograms_from_pb(
    report: pb::HistogramReport,
    task: &Task,
    plan: &HistogramPlan,
) -> Result<HistogramReport> {
    let field = "histograms";
    let pb::HistogramReport {
        task_id,
        step,
        histograms_json,
    } = report;
    if task_id != task.task_id {
        return Err(WireError::TaskMismatch {
            expected: task.task_id.clone(),
            got: task_id.chars().take(64).collect(),
        });
    }
    let histograms: Vec<Option<ColumnHistogram>> = from_json(field, &histograms_json)?;
    if histograms.len() != plan.ranges.len() {
        return Err(WireError::Dimension {
            field,
            expected: plan.ranges.len(),
            got: histograms.len(),
        });
    }
    for (i, (histogram, range)) in histograms.iter().zip(&plan.ranges).enumerate() {
        match (histogram, range) {
            (None, None) => {}
            (Some(h), Some(r)) => {
                h.validate()
                    .map_err(|e| invalid(field, format!("column {i}: {e}")))?;
                if h.counts.len() != plan.bins || h.min != r.min || h.max != r.max {
                    return Err(invalid(
                        field,
                        format!("column {i}: the histogram does not use the plan's range and bins"),
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    field,
                    format!("column {i}: a histogram must be sent exactly where the plan asks"),
                ));
            }
        }
    }
    Ok(HistogramReport { step, histograms })
}
