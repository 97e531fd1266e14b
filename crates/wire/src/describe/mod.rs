//! Reading a decrypted payload for a person: [`describe_payload`] decodes
//! the protobuf message a kind names (see [`message_types`]) and summarises
//! it as JSON, vectors as dimension, L2 norm and first values; anything
//! else becomes its length and a hex prefix (`render` prints such a
//! summary as indented text).
//!
//! The generated types stop here: every message is destructured field by
//! field, so a new proto field fails to compile until it is shown. A
//! member's submission is logged as the `Submission` it signed; its body
//! is shown as the message of its kind.
//!
//! This module holds the table of kinds, the entry point and the
//! summaries every message shares (vectors, names, numbers, bytes); the
//! summaries of the task, of the instructions and of the members'
//! submissions live in their own files.

use prost::Message as _;
use serde::Serialize;
use serde_json::{Value, json};

use crate::kinds;
use crate::pb;

mod instruction;
mod report;
mod task;

/// How many leading values of a vector a summary shows.
const FIRST_VALUES: usize = 5;
/// How many names of a list a summary shows.
const FIRST_NAMES: usize = 10;
/// How many leading bytes an undecoded payload shows.
const HEX_PREFIX_BYTES: usize = 32;

/// A payload, decoded and summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecodedPayload {
    /// Full protobuf name of the type it decoded as (`medfed.v2.ModelUpdate`),
    /// `text` for a UTF-8 refusal message, or `unknown`.
    pub message_type: String,
    /// Length of the payload in bytes.
    pub bytes: usize,
    /// The summary: the message's fields, or `hex_prefix` (and `note`) for
    /// unknown payloads.
    pub content: Value,
}

/// What a payload is decoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    JoinRequest,
    JoinResponse,
    TaskSpec,
    Instruction,
    Preprocessing,
    HistogramReport,
    Parameters,
    StatisticsReport,
    ModelUpdate,
    BaselineModel,
    EvaluationReport,
    NewtonTermsReport,
    NormalTermsReport,
    Signed,
    SecAggSubmission,
    PrivacySpend,
    BudgetRefusal,
    Refusal,
    Text,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::JoinRequest => "medfed.v2.JoinRequest",
            Type::JoinResponse => "medfed.v2.JoinResponse",
            Type::TaskSpec => "medfed.v2.TaskSpec",
            Type::Instruction => "medfed.v2.Instruction",
            Type::Preprocessing => "medfed.v2.Preprocessing",
            Type::HistogramReport => "medfed.v2.HistogramReport",
            Type::Parameters => "medfed.v2.Parameters",
            Type::StatisticsReport => "medfed.v2.StatisticsReport",
            Type::ModelUpdate => "medfed.v2.ModelUpdate",
            Type::BaselineModel => "medfed.v2.BaselineModel",
            Type::EvaluationReport => "medfed.v2.EvaluationReport",
            Type::NewtonTermsReport => "medfed.v2.NewtonTermsReport",
            Type::NormalTermsReport => "medfed.v2.NormalTermsReport",
            Type::Signed => "medfed.v2.Signed",
            Type::SecAggSubmission => "medfed.v2.SecAggSubmission",
            Type::PrivacySpend => "medfed.v2.PrivacySpend",
            Type::BudgetRefusal => "medfed.v2.BudgetRefusal",
            Type::Refusal => "medfed.v2.Refusal",
            Type::Text => "text",
        }
    }
}

/// The message kinds `show` knows and the types tried for each, in order:
/// the first that decodes wins.
const TABLE: &[(&str, &[Type])] = &[
    (kinds::JOIN, &[Type::JoinRequest]),
    (kinds::TASK, &[Type::JoinResponse, Type::TaskSpec]),
    ("instruction", &[Type::Instruction]),
    (kinds::COLLECT_STATISTICS, &[Type::Instruction]),
    ("global-model", &[Type::Instruction, Type::Parameters]),
    (kinds::TRAIN, &[Type::Instruction]),
    (kinds::TRAIN_BASELINE, &[Type::Instruction]),
    (kinds::EVALUATE, &[Type::Instruction]),
    (kinds::NEWTON_ROUND, &[Type::Instruction]),
    (kinds::NORMAL_EQUATIONS, &[Type::Instruction]),
    (kinds::FINISHED, &[Type::Instruction]),
    (kinds::WAIT, &[Type::Instruction]),
    ("preprocessing", &[Type::Instruction, Type::Preprocessing]),
    (kinds::STATISTICS, &[Type::StatisticsReport]),
    (kinds::COLLECT_HISTOGRAMS, &[Type::Instruction]),
    (kinds::HISTOGRAMS, &[Type::HistogramReport]),
    (kinds::UPDATE, &[Type::ModelUpdate]),
    (kinds::BASELINE, &[Type::BaselineModel]),
    (kinds::EVALUATION, &[Type::EvaluationReport]),
    (kinds::NEWTON_TERMS, &[Type::NewtonTermsReport]),
    (kinds::NORMAL_TERMS, &[Type::NormalTermsReport]),
    ("signed", &[Type::Signed]),
    (kinds::SECAGG_KEYS_REQUEST, &[Type::Instruction]),
    (kinds::SECAGG_KEY_LIST, &[Type::Instruction]),
    (kinds::SECAGG_ROUTED_SHARES, &[Type::Instruction]),
    (kinds::SECAGG_CONSISTENCY_REQUEST, &[Type::Instruction]),
    (kinds::SECAGG_UNMASK_REQUEST, &[Type::Instruction]),
    (kinds::SECAGG, &[Type::SecAggSubmission]),
    ("parameters", &[Type::Parameters]),
    // A member's refusal; logs written before those existed used the
    // name for a rejected call, whose payload is text.
    (kinds::REFUSAL, &[Type::Refusal, Type::Text]),
    (kinds::REJECTION, &[Type::Text]),
    (kinds::PRIVACY_SPEND, &[Type::PrivacySpend]),
    (kinds::BUDGET_REFUSAL, &[Type::BudgetRefusal]),
];

/// The kinds [`describe_payload`] decodes, each with the protobuf types it
/// tries in order (`text`: UTF-8 text, e.g. a refusal's status message).
pub fn message_types() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLE
        .iter()
        .map(|(kind, types)| (*kind, types.iter().map(|t| t.name()).collect()))
        .collect()
}

/// Decodes and summarises the payload of an entry of kind `kind`.
pub fn describe_payload(kind: &str, bytes: &[u8]) -> DecodedPayload {
    let candidates = TABLE
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, types)| *types);
    let mut failures = Vec::new();
    for &candidate in candidates {
        match decode_as(candidate, bytes) {
            Ok(content) => {
                return DecodedPayload {
                    message_type: candidate.name().to_owned(),
                    bytes: bytes.len(),
                    content,
                };
            }
            Err(reason) => failures.push(format!("not a {}: {reason}", candidate.name())),
        }
    }
    let note = if candidates.is_empty() {
        format!("no message type is known for kind `{kind}`")
    } else {
        failures.join("; ")
    };
    DecodedPayload {
        message_type: "unknown".to_owned(),
        bytes: bytes.len(),
        content: json!({
            "hex_prefix": hex(&bytes[..bytes.len().min(HEX_PREFIX_BYTES)]),
            "note": note,
        }),
    }
}

fn decode_as(kind: Type, bytes: &[u8]) -> Result<Value, String> {
    let error = |e: prost::DecodeError| e.to_string();
    Ok(match kind {
        Type::JoinRequest => task::join_request(pb::JoinRequest::decode(bytes).map_err(error)?),
        Type::JoinResponse => task::join_response(pb::JoinResponse::decode(bytes).map_err(error)?),
        Type::TaskSpec => task::task_spec(pb::TaskSpec::decode(bytes).map_err(error)?),
        Type::Instruction => {
            instruction::instruction(pb::Instruction::decode(bytes).map_err(error)?)
        }
        Type::Preprocessing => {
            instruction::preprocessing(pb::Preprocessing::decode(bytes).map_err(error)?)
        }
        Type::Parameters => parameters(pb::Parameters::decode(bytes).map_err(error)?),
        Type::PrivacySpend => report::spend(pb::PrivacySpend::decode(bytes).map_err(error)?),
        Type::StatisticsReport
        | Type::HistogramReport
        | Type::ModelUpdate
        | Type::NewtonTermsReport
        | Type::NormalTermsReport
        | Type::BaselineModel
        | Type::EvaluationReport
        | Type::SecAggSubmission
        | Type::BudgetRefusal
        | Type::Refusal => report::submission(kind, bytes)?,
        Type::Signed => report::signed(pb::Signed::decode(bytes).map_err(error)?),
        Type::Text => match std::str::from_utf8(bytes) {
            Ok(text) if !text.chars().any(|c| c.is_control() && c != '\n') => json!(text),
            _ => return Err("not printable UTF-8 text".into()),
        },
    })
}

/// JSON text carried inside a message, parsed for display (or kept as text
/// when it does not parse).
fn embedded_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn parameters(p: pb::Parameters) -> Value {
    let pb::Parameters { values } = p;
    vector(&values)
}

/// Dimension, L2 norm and first values of a vector.
fn vector(values: &[f64]) -> Value {
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    json!({
        "dimension": values.len(),
        "l2_norm": number(norm),
        "first": values.iter().take(FIRST_VALUES).map(|v| number(*v)).collect::<Vec<_>>(),
    })
}

/// Count and first entries of a list of names.
fn names(list: &[String]) -> Value {
    json!({ "count": list.len(), "first": &list[..list.len().min(FIRST_NAMES)] })
}

/// `bytes` as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// SHA-256 of `bytes`, in lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// A float as JSON; NaN and infinities as strings (JSON has no such numbers).
fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

#[cfg(test)]
mod tests;
