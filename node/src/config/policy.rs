//! The `[policy]` table of the node file: each key's type and range checked,
//! and a refusal that names the file, the line and the key.

use std::path::Path;

use medfed_wire::TrainingAlgorithm;
use toml::Spanned;
use toml::de::DeValue;

use super::NodeConfigError;
use super::read::Reader;
use crate::policy::{Fraction, Policy};

/// The keys `[policy]` allows.
pub(super) const KEYS: &[&str] = &[
    "columns",
    "deny_columns",
    "not_identifiers",
    "algorithms",
    "models",
    "require_secure_aggregation",
    "require_dp",
    "min_noise_multiplier",
    "max_epsilon_per_round",
    "trust_coordinator_noise",
    "dp_unnoised",
    "min_rows",
    "min_cell",
    "max_parameters_per_row",
    "max_score_bins",
    "max_evaluations",
    "max_steps",
    "coordinator",
    "members",
    "member_certificates",
    "min_threshold",
    "require_pinning",
    "approved_tasks",
];

/// Most names a list key may hold.
const MAX_LIST: usize = 10_000;

/// Stores `[policy] key = value` in `policy`.
pub(super) fn set(
    reader: &Reader<'_>,
    policy: &mut Policy,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    base: &Path,
) -> Result<(), NodeConfigError> {
    let shown = format!("[policy] {key}");
    let shown = shown.as_str();
    let invalid = |problem: &str| reader.invalid(shown, value, problem);
    match key {
        "columns" => policy.columns = Some(names(reader, shown, value)?),
        "deny_columns" => policy.deny_columns = names(reader, shown, value)?,
        "not_identifiers" => policy.not_identifiers = names(reader, shown, value)?,
        "members" => policy.members = Some(names(reader, shown, value)?),
        "algorithms" => {
            policy.algorithms = names(reader, shown, value)?
                .iter()
                .map(|name| {
                    TrainingAlgorithm::from_name(name).ok_or_else(|| {
                        invalid(&format!(
                            "{name:?} is not an algorithm: expected any of fedavg, fedprox, \
                             newton, closed-form"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        "models" => {
            policy.models = names(reader, shown, value)?
                .iter()
                .map(|name| {
                    medfed_model::ModelKind::from_name(name).ok_or_else(|| {
                        invalid(&format!(
                            "{name:?} is not a model: expected any of logistic, linear, poisson"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        "require_secure_aggregation" => {
            policy.require_secure_aggregation = boolean(reader, shown, value)?;
        }
        "require_dp" => policy.require_dp = boolean(reader, shown, value)?,
        "require_pinning" => policy.require_pinning = boolean(reader, shown, value)?,
        "trust_coordinator_noise" => {
            policy.trust_coordinator_noise = boolean(reader, shown, value)?;
        }
        "dp_unnoised" => {
            let name = reader.text(shown, value)?;
            policy.dp_unnoised = crate::policy::DpUnnoised::from_name(&name).ok_or_else(|| {
                invalid(&format!(
                    "{name:?} is not allowed: expected \"secure-sums\" (the default), \"never\" \
                     or \"clear-statistics\""
                ))
            })?;
        }
        "min_noise_multiplier" => {
            let sigma = reader.number(shown, value)?;
            if !(sigma.is_finite() && sigma >= 0.0) {
                return Err(invalid("expected a finite number >= 0, e.g. 1.0"));
            }
            policy.min_noise_multiplier = sigma;
        }
        "max_epsilon_per_round" => {
            let epsilon = reader.number(shown, value)?;
            if !(epsilon.is_finite() && epsilon > 0.0) {
                return Err(invalid("expected a finite number > 0, e.g. 0.5"));
            }
            policy.max_epsilon_per_round = Some(epsilon);
        }
        "max_parameters_per_row" => {
            let ratio = reader.number(shown, value)?;
            if !(ratio.is_finite() && ratio > 0.0) {
                return Err(invalid(
                    "expected a finite number > 0, e.g. 0.33 (DataSHIELD's nfilter.glm)",
                ));
            }
            policy.max_parameters_per_row = ratio;
        }
        "min_rows" => policy.min_rows = integer(reader, shown, value, 1, 1_000_000_000)?,
        "min_cell" => policy.min_cell = integer(reader, shown, value, 1, 1_000_000_000)?,
        "max_score_bins" => {
            policy.max_score_bins = u32_integer(reader, shown, value, 2, 1_000_000)?;
        }
        "max_evaluations" => {
            policy.max_evaluations = u32_integer(reader, shown, value, 0, 1_000_000)?;
        }
        "max_steps" => policy.max_steps = u32_integer(reader, shown, value, 1, 100_000_000)?,
        "coordinator" => {
            let text = reader.text(shown, value)?;
            policy.coordinator = Some(parse_fingerprint(&text).ok_or_else(|| {
                invalid(
                    "expected the SHA-256 of the coordinator certificate's DER as 64 hex digits \
                     (colons allowed), as `medfed-certs fingerprint` prints it",
                )
            })?);
        }
        "min_threshold" => {
            let text = reader.text(shown, value)?;
            policy.min_threshold = parse_fraction(&text).ok_or_else(|| {
                invalid(&format!(
                    "expected a fraction \"p/q\" more than 1/2 and at most 1, e.g. \"2/3\" (the \
                     default); got {text:?}"
                ))
            })?;
        }
        "approved_tasks" => policy.approved_tasks = Some(reader.path(shown, value, base)?),
        "member_certificates" => {
            let DeValue::Table(entries) = value.get_ref() else {
                return Err(reader.wrong_type(
                    shown,
                    value,
                    "a table of member = \"<SHA-256 of its certificate>\"",
                ));
            };
            if entries.len() > MAX_LIST {
                return Err(invalid(&format!("at most {MAX_LIST} members")));
            }
            for (member, pin) in entries {
                let text = reader.text(shown, pin)?;
                let parsed = parse_fingerprint(&text).ok_or_else(|| {
                    reader.invalid(
                        shown,
                        pin,
                        "expected the SHA-256 of the member certificate's DER as 64 hex digits \
                         (colons allowed), as `medfed-certs fingerprint` prints it",
                    )
                })?;
                policy
                    .member_certificates
                    .insert(member.get_ref().to_string(), parsed);
            }
        }
        // KEYS and this match list the same keys; `parse` refuses any other.
        _ => unreachable!("key policy.{key} is in KEYS but not read"),
    }
    Ok(())
}

/// 32 bytes from 64 hex digits, colons between bytes allowed.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 || !digits.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `p/q` (whole numbers, spaces around them allowed) as a [`Fraction`], when
/// it is more than 1/2 and at most 1.
fn parse_fraction(text: &str) -> Option<Fraction> {
    let (p, q) = text.split_once('/')?;
    let whole = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    Fraction::new(whole(p)?, whole(q)?)
}

/// A list of non-empty, distinct strings.
fn names(
    reader: &Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<Vec<String>, NodeConfigError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(reader.wrong_type(key, value, "a list of names, e.g. [\"age\", \"sex\"]"));
    };
    if items.len() > MAX_LIST {
        return Err(reader.invalid(key, value, &format!("at most {MAX_LIST} names")));
    }
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let name = reader.text(key, item)?;
        if names.contains(&name) {
            return Err(reader.invalid(key, item, "listed twice"));
        }
        names.push(name);
    }
    Ok(names)
}

fn boolean(
    reader: &Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<bool, NodeConfigError> {
    match value.get_ref() {
        DeValue::Boolean(flag) => Ok(*flag),
        _ => Err(reader.wrong_type(key, value, "true or false")),
    }
}

fn integer(
    reader: &Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    min: u64,
    max: u64,
) -> Result<u64, NodeConfigError> {
    let DeValue::Integer(number) = value.get_ref() else {
        return Err(reader.wrong_type(key, value, "a whole number"));
    };
    let parsed = u64::from_str_radix(&number.as_str().replace('_', ""), number.radix()).ok();
    match parsed {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(reader.invalid(
            key,
            value,
            &format!("expected a whole number from {min} to {max}"),
        )),
    }
}

fn u32_integer(
    reader: &Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    min: u32,
    max: u32,
) -> Result<u32, NodeConfigError> {
    // The range keeps it within u32.
    integer(reader, key, value, min.into(), max.into()).map(|n| n as u32)
}
