//! The exchange-log kind of every message, defined once. Both sides write
//! them into their logs, `medfed-audit` reads them back: they are part of
//! the log format, so a name never changes.

/// A member's join request.
pub const JOIN: &str = "join";
/// The task the coordinator answers a join with.
pub const TASK: &str = "task";
/// A call the other side rejected (the payload is the reason, as text).
/// Logs written before member refusals existed named these `refusal`.
pub const REJECTION: &str = "rejection";

/// Instruction: send per-column statistics.
pub const COLLECT_STATISTICS: &str = "collect-statistics";
/// Instruction: send per-column histograms.
pub const COLLECT_HISTOGRAMS: &str = "collect-histograms";
/// Instruction: a FedAvg/FedProx training round.
pub const TRAIN: &str = "train";
/// Instruction: a federated Newton round.
pub const NEWTON_ROUND: &str = "newton-round";
/// Instruction: the normal equations of the closed-form fit.
pub const NORMAL_EQUATIONS: &str = "normal-equations";
/// Instruction: train a site-alone model.
pub const TRAIN_BASELINE: &str = "train-baseline";
/// Instruction: score models on the held-out rows.
pub const EVALUATE: &str = "evaluate";
/// Instruction: the task is over.
pub const FINISHED: &str = "finished";
/// Instruction: nothing new yet (never logged).
pub const WAIT: &str = "wait";
/// Instruction: secure aggregation stage 0 (compute, advertise keys).
pub const SECAGG_KEYS_REQUEST: &str = "secagg-keys-request";
/// Instruction: secure aggregation stage 1 (the signed key list).
pub const SECAGG_KEY_LIST: &str = "secagg-key-list";
/// Instruction: secure aggregation stage 2 (the routed shares).
pub const SECAGG_ROUTED_SHARES: &str = "secagg-routed-shares";
/// Instruction: secure aggregation stage 3 (the survivor set to sign).
pub const SECAGG_CONSISTENCY_REQUEST: &str = "secagg-consistency-request";
/// Instruction: secure aggregation stage 4 (the signed survivor set whose
/// masks to remove).
pub const SECAGG_UNMASK_REQUEST: &str = "secagg-unmask-request";

/// Submission: per-column statistics.
pub const STATISTICS: &str = "statistics";
/// Submission: per-column histograms.
pub const HISTOGRAMS: &str = "histograms";
/// Submission: a training round's update.
pub const UPDATE: &str = "update";
/// Submission: a Newton round's terms.
pub const NEWTON_TERMS: &str = "newton-terms";
/// Submission: the normal-equation terms.
pub const NORMAL_TERMS: &str = "normal-terms";
/// Submission: a site-alone model.
pub const BASELINE: &str = "baseline";
/// Submission: evaluation counts.
pub const EVALUATION: &str = "evaluation";
/// Submission: any secure-aggregation stage (the stage is in the body).
pub const SECAGG: &str = "secagg";
/// A signed body that is not a valid submission, kept as received.
pub const UNREADABLE_SUBMISSION: &str = "submission";
/// Submission: a member declines a DP task or round.
pub const BUDGET_REFUSAL: &str = "budget-refusal";
/// Submission: a member refuses a task or step under its own policy (or
/// for a data reason) and leaves; the body names the rule.
pub const REFUSAL: &str = "refusal";

/// A secure-aggregation stage's message: advertised keys.
pub const SECAGG_KEYS: &str = "secagg-keys";
/// A secure-aggregation stage's message: encrypted shares.
pub const SECAGG_SHARES: &str = "secagg-shares";
/// A secure-aggregation stage's message: the masked input.
pub const SECAGG_MASKED_INPUT: &str = "secagg-masked-input";
/// A secure-aggregation stage's message: the signature on the survivor set.
pub const SECAGG_CONSISTENCY: &str = "secagg-consistency";
/// A secure-aggregation stage's message: unmasking shares.
pub const SECAGG_UNMASK: &str = "secagg-unmask";

/// A member's local record of a privacy spend (its own log only).
pub const PRIVACY_SPEND: &str = "privacy-spend";
