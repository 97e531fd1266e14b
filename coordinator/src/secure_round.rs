//! One securely aggregated step: four coordinator steps (advertise keys,
//! share keys, masked input, unmasking), each with the step deadline and
//! quorum of every other step. The coordinator drives the medfed-secure
//! server state machine and ends with the sum over the surviving members of
//! the vectors they masked (see [`MaskedKind`]): the preprocessing's two
//! statistics passes, a FedAvg/FedProx round's weighted updates, a Newton
//! round's terms or the normal equations, and the final evaluation. It
//! never holds one member's vector.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use medfed_model::preprocess::{
    ColumnHistogram, ColumnSummary, DEFAULT_MEDIAN_BINS, RowCounts, statistics_from_masked,
};
use medfed_model::{CalibrationCounts, FittedPreprocessor, NewtonTerms, NormalTerms};
use medfed_secure::secagg::{FixedPoint, Member, SecAggConfig, SecAggParams, Server};
use medfed_wire::secagg::MaskedKind;
use medfed_wire::{EvaluationCounts, Instruction, RosterMember, SecureAggregation, Step};
use ndarray::Array1;

use crate::config::TaskConfig;
use crate::orchestrator::{RunError, StepCounter, wait_for_members};
use crate::state::{Collecting, SecAggServer, Shared};

/// What a securely aggregated FedAvg/FedProx round produced.
pub struct RoundSum {
    /// The row-weighted mean update of the survivors.
    pub delta: Array1<f64>,
    /// Members whose masked input is in the sum.
    pub contributors: usize,
    /// Members that are not.
    pub missing: Vec<String>,
    /// Row-weighted mean training loss of the round's starting model.
    pub train_loss: f64,
    /// Held-out counts of the round's model over all survivors' rows (when
    /// asked).
    pub evaluation: Option<EvaluationCounts>,
}

/// The unmasked sum of one securely aggregated step.
pub struct SecureSum {
    /// The sum of the survivors' vectors, decoded, without the held-out
    /// counts.
    pub sum: Vec<f64>,
    /// Members whose masked input is in the sum.
    pub survivors: BTreeSet<String>,
    /// Members of the task that are not.
    pub missing: Vec<String>,
    /// Held-out counts of the step's model over all survivors' rows (when
    /// asked); per-member counts are never seen.
    pub evaluation: Option<EvaluationCounts>,
}

/// The round's training instruction, as stage 0 carries it.
pub struct TrainSpec<'a> {
    /// 1-based round number.
    pub round: u32,
    /// The round's global model.
    pub global: &'a Array1<f64>,
    /// The global preprocessing.
    pub preprocessing: &'a FittedPreprocessor,
    /// FedProx weight (0 for FedAvg).
    pub prox_mu: f64,
    /// Also score the global model on the held-out rows.
    pub evaluate: bool,
}

/// Runs one securely aggregated FedAvg/FedProx round.
///
/// # Errors
/// As [`secure_sum`], and a decoded row count that differs from the
/// survivors' declared rows (a wrong sum is an error, never a model).
pub async fn secure_round(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    train: TrainSpec<'_>,
) -> Result<RoundSum, RunError> {
    let round = train.round;
    let step = format!("round {round}");
    let work = Instruction::Train {
        round,
        global: train.global.clone(),
        preprocessing: train.preprocessing.clone(),
        prox_mu: train.prox_mu,
        evaluate: train.evaluate,
    };
    let SecureSum {
        sum,
        survivors,
        missing,
        evaluation,
    } = secure_sum(shared, config, settings, steps, work).await?;
    let failed = |reason: String| RunError::SecureAggregation {
        step: step.clone(),
        reason,
    };
    let dimension = shared.task.dimension();
    let rows = sum[dimension];
    if shared.task.differential_privacy.is_some() {
        // DP: each member masks [clipped and noised update..., 1, 0], so
        // the sum weighs members equally and the count must come out as
        // the number of survivors (which is public).
        let count = survivors.len() as f64;
        if (rows - count).abs() > 0.5 {
            return Err(failed(format!(
                "the unmasked contributor count {rows} is not the {count} survivors: the sum \
                 is wrong and no model is made from it"
            )));
        }
        let delta = Array1::from_iter(sum[..dimension].iter().map(|v| v / count));
        return Ok(RoundSum {
            delta,
            contributors: survivors.len(),
            missing,
            // Not released in DP rounds: data-dependent and not covered.
            train_loss: f64::NAN,
            evaluation,
        });
    }
    // The row count travels masked with the update: it must come out as
    // the survivors' declared rows, or the sum is wrong and is refused.
    check_rows(shared, round, &survivors, rows)?;
    let delta = Array1::from_iter(sum[..dimension].iter().map(|v| v / rows));
    let train_loss = sum[dimension + 1] / rows;
    Ok(RoundSum {
        delta,
        contributors: survivors.len(),
        missing,
        train_loss,
        evaluation,
    })
}

/// Runs one securely aggregated Newton round at `params` and returns the
/// pooled terms with the step's survivors.
///
/// # Errors
/// As [`secure_sum`], terms that cannot come from real rows, and a decoded
/// row count that differs from the survivors' declared rows.
pub async fn secure_newton(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
) -> Result<(NewtonTerms, SecureSum), RunError> {
    let round = work.round();
    let sum = secure_sum(shared, config, settings, steps, work).await?;
    let terms = medfed_wire::terms::newton_from_masked(&sum.sum, &shared.task).map_err(|e| {
        RunError::SecureAggregation {
            step: format!("round {round}"),
            reason: format!("the unmasked Newton terms are refused: {e}"),
        }
    })?;
    check_rows(shared, round, &sum.survivors, terms.n as f64)?;
    Ok((terms, sum))
}

/// Runs the securely aggregated normal-equation step and returns the
/// pooled terms with the step's survivors.
///
/// # Errors
/// As [`secure_newton`].
pub async fn secure_normal(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
) -> Result<(NormalTerms, SecureSum), RunError> {
    let round = work.round();
    let sum = secure_sum(shared, config, settings, steps, work).await?;
    let terms = medfed_wire::terms::normal_from_masked(&sum.sum, &shared.task).map_err(|e| {
        RunError::SecureAggregation {
            step: format!("round {round}"),
            reason: format!("the unmasked normal-equation terms are refused: {e}"),
        }
    })?;
    check_rows(shared, round, &sum.survivors, terms.n as f64)?;
    Ok((terms, sum))
}

/// The row count unmasked with a sum must be positive and equal the
/// survivors' declared training rows (when all declared them, or, under
/// secure aggregation, when they are the statistics passes' members), or
/// the sum is wrong and no model is made from it.
fn check_rows(
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

/// Runs the four stages of secure aggregation for stage-0 `work` (a
/// training, Newton or normal-equation instruction) and returns the
/// decoded sum of the survivors' vectors.
///
/// # Errors
/// Fewer members than the threshold, a stage that closes below the quorum
/// or the threshold, or a sum the protocol cannot finish.
pub async fn secure_sum(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
) -> Result<SecureSum, RunError> {
    let task = &shared.task;
    let round = work.round();
    let label = step_label(&work);
    let evaluate = MaskedKind::evaluates(&work);
    let failed = |reason: String| RunError::SecureAggregation {
        step: label.clone(),
        reason,
    };
    let Some(vector_len) = MaskedKind::vector_len(&work, task) else {
        return Err(failed(
            "this step cannot be securely aggregated for this task".into(),
        ));
    };
    // The roster: members that joined, in task order, with the certificate
    // each presented (members check each against the consortium CA).
    let (roster, certificates) = {
        let state = shared.lock();
        let mut roster = Vec::new();
        let mut certificates = Vec::new();
        for name in &task.members {
            if let Some(der) = state.certificates.get(name) {
                let key = medfed_tls::signing_key_from_der(&der.as_slice().into())
                    .ok()
                    .flatten();
                if let Some(key) = key {
                    roster.push(Member {
                        name: name.clone(),
                        verify_key: key,
                    });
                    let digest = ring::digest::digest(&ring::digest::SHA256, der);
                    let mut certificate_sha256 = [0u8; 32];
                    certificate_sha256.copy_from_slice(digest.as_ref());
                    certificates.push(RosterMember {
                        name: name.clone(),
                        certificate: Some(der.clone()),
                        certificate_sha256,
                    });
                }
            }
        }
        (roster, certificates)
    };
    if roster.len() < settings.threshold as usize {
        return Err(failed(format!(
            "only {} members have joined ({}), fewer than the threshold {}",
            roster.len(),
            roster
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            settings.threshold
        )));
    }
    let params = SecAggParams::new(SecAggConfig {
        task: task.task_id.clone(),
        round: MaskedKind::session(&work),
        threshold: settings.threshold,
        members: roster.clone(),
        vector_len,
        fixed_point: FixedPoint::new(settings.fixed_point_bits)
            .map_err(|e| failed(e.to_string()))?,
    })
    .map_err(|e| failed(e.to_string()))?;
    let ids: BTreeMap<String, u32> = roster.iter().map(|m| m.name.clone()).zip(0..).collect();
    let name_of = |id: u32| roster[id as usize].name.clone();

    // Stage 0: train and advertise keys.
    let everyone: BTreeSet<String> = ids.keys().cloned().collect();
    let instruction = Instruction::SecAggKeys {
        work: Box::new(work),
        roster: certificates,
    };
    let server = SecAggServer::Keys(Server::new(params.clone()));
    let server = stage(
        shared,
        config,
        steps,
        (round, &label),
        "keys",
        instruction,
        server,
        &ids,
        everyone,
    )
    .await?;
    let SecAggServer::Keys(server) = server else {
        unreachable!("stage 0 collects keys");
    };
    let (sharing, key_list) = server.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 1: every advertised key to everyone that advertised.
    let advertised: BTreeSet<String> = key_list.keys.iter().map(|k| name_of(k.sender)).collect();
    let instruction = Instruction::SecAggShares { round, key_list };
    let server = stage(
        shared,
        config,
        steps,
        (round, &label),
        "shares",
        instruction,
        SecAggServer::Shares(sharing),
        &ids,
        advertised,
    )
    .await?;
    let SecAggServer::Shares(sharing) = server else {
        unreachable!("stage 1 collects shares");
    };
    let (masking, routed) = sharing.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 2: each member its own shares; masked inputs are added up.
    let routed: BTreeMap<String, _> = routed
        .into_iter()
        .map(|r| (name_of(r.recipient), r))
        .collect();
    let shared_keys: BTreeSet<String> = routed.keys().cloned().collect();
    let instruction = Instruction::SecAggMask { round, routed };
    let server = stage(
        shared,
        config,
        steps,
        (round, &label),
        "masked inputs",
        instruction,
        SecAggServer::Masked(masking),
        &ids,
        shared_keys,
    )
    .await?;
    let SecAggServer::Masked(masking) = server else {
        unreachable!("stage 2 collects masked inputs");
    };
    let (unmasking, request) = masking.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 3: the survivors reveal the shares that remove the masks.
    let survivors: BTreeSet<String> = request.survivors.iter().map(|&id| name_of(id)).collect();
    let instruction = Instruction::SecAggUnmask { round, request };
    let server = stage(
        shared,
        config,
        steps,
        (round, &label),
        "unmasking",
        instruction,
        SecAggServer::Unmask(unmasking),
        &ids,
        survivors.clone(),
    )
    .await?;
    let SecAggServer::Unmask(unmasking) = server else {
        unreachable!("stage 3 collects unmasking shares");
    };
    let mut sum = unmasking
        .finish()
        .map_err(|e| failed(e.to_string()))?
        .decode();
    let evaluation = if evaluate {
        let counts = sum.split_off(vector_len - medfed_wire::secagg::evaluation_len(task));
        Some(
            medfed_wire::secagg::evaluation_from_masked(&counts, task).map_err(|e| {
                failed(format!(
                    "the unmasked held-out counts are refused: {e}: the sum is wrong"
                ))
            })?,
        )
    } else {
        None
    };
    let missing = task
        .members
        .iter()
        .filter(|m| !survivors.contains(*m))
        .cloned()
        .collect();
    Ok(SecureSum {
        sum,
        survivors,
        missing,
        evaluation,
    })
}

/// Publishes one stage and waits for the members it expects: all of them,
/// or at least the quorum by the step deadline. Returns the server with
/// what arrived.
#[allow(clippy::too_many_arguments)]
async fn stage(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    (round, label): (u32, &str),
    what: &str,
    instruction: Instruction,
    server: SecAggServer,
    ids: &BTreeMap<String, u32>,
    expected: BTreeSet<String>,
) -> Result<SecAggServer, RunError> {
    let s = steps.next_step();
    shared.publish(
        Step {
            step: s,
            instruction,
        },
        Collecting::SecAgg {
            step: s,
            round,
            server,
            ids: ids.clone(),
            expected: expected.clone(),
            received: BTreeSet::new(),
        },
    );
    let label = format!("{label} ({what})");
    wait_for_members(shared, config, &label, &expected).await?;
    let Collecting::SecAgg { server, .. } = shared.take_collected() else {
        unreachable!("a secure-aggregation step collects secure-aggregation messages");
    };
    Ok(server)
}

/// How a securely aggregated step is named in messages: its round, or the
/// pass outside training.
fn step_label(work: &Instruction) -> String {
    match MaskedKind::of(work) {
        Some(MaskedKind::Statistics) => "the statistics pass".into(),
        Some(MaskedKind::Moments) => "the column moments pass".into(),
        Some(MaskedKind::Evaluation) => "the final evaluation".into(),
        _ => format!("round {}", work.round()),
    }
}

/// What the securely aggregated preprocessing passes produced.
pub struct SecurePreprocessing {
    /// The pooled column summaries, as the clear pass would have merged
    /// them (sums within the fixed-point precision).
    pub summaries: Vec<ColumnSummary>,
    /// The pooled median histograms (when a column is imputed by its
    /// median).
    pub histograms: Option<Vec<Option<ColumnHistogram>>>,
    /// Row counts over the members in the sum.
    pub rows: RowCounts,
}

/// The preprocessing's statistics under secure aggregation: a first
/// securely aggregated pass for counts and coarse ranges, then (when a
/// numeric column has a range) a second over the pooled ranges for the
/// range-scaled sums and the median histograms. Both must sum the same
/// members, or the pooled figures would mix different sites' rows.
///
/// # Errors
/// As [`secure_sum`]; sums that could not come from real rows; a member in
/// one pass's sum and not the other's.
pub async fn secure_preprocess(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
) -> Result<SecurePreprocessing, RunError> {
    let task = &shared.task;
    let refused = |step: &str, e: medfed_model::ModelError| RunError::SecureAggregation {
        step: step.into(),
        reason: format!("the unmasked sums are refused: {e}: the sum is wrong"),
    };
    let first = secure_sum(
        shared,
        config,
        settings,
        steps,
        Instruction::CollectStatistics,
    )
    .await?;
    let pooled = statistics_from_masked(&task.columns, &first.sum)
        .map_err(|e| refused("the statistics pass", e))?;
    let rows = pooled.rows;
    shared.lock().pooled_rows = Some((first.survivors.clone(), rows.train));
    let plan = pooled.plan(&task.columns, DEFAULT_MEDIAN_BINS);
    if plan.is_empty() {
        let (summaries, _) = pooled
            .finish(&task.columns, &plan, &[])
            .map_err(|e| refused("the statistics pass", e))?;
        return Ok(SecurePreprocessing {
            summaries,
            histograms: None,
            rows,
        });
    }
    let second = secure_sum(
        shared,
        config,
        settings,
        steps,
        Instruction::CollectHistograms { plan: plan.clone() },
    )
    .await?;
    if second.survivors != first.survivors {
        let differ: Vec<&str> = first
            .survivors
            .symmetric_difference(&second.survivors)
            .map(String::as_str)
            .collect();
        return Err(RunError::SecureAggregation {
            step: "the column moments pass".into(),
            reason: format!(
                "{} took part in only one of the two statistics passes, so their sums would \
                 mix different sites' rows",
                differ.join(", ")
            ),
        });
    }
    let (summaries, histograms) = pooled
        .finish(&task.columns, &plan, &second.sum)
        .map_err(|e| refused("the column moments pass", e))?;
    let needs_histograms = histograms.iter().any(Option::is_some);
    Ok(SecurePreprocessing {
        summaries,
        histograms: needs_histograms.then_some(histograms),
        rows,
    })
}

/// The final held-out evaluation of `model` under secure aggregation: the
/// counts (and, for a logistic model, calibration counts) over every
/// surviving member's held-out rows. No member's own counts are seen.
///
/// # Errors
/// As [`secure_sum`], and counts that do not add up.
pub async fn secure_evaluate(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
    model: &Array1<f64>,
) -> Result<(EvaluationCounts, Option<CalibrationCounts>), RunError> {
    let work = Instruction::Evaluate {
        preprocessing: preprocessing.clone(),
        models: vec![model.clone()],
    };
    let sum = secure_sum(shared, config, settings, steps, work).await?;
    let (mut counts, mut calibration) =
        medfed_wire::secagg::final_evaluation_from_masked(&sum.sum, &shared.task, 1).map_err(
            |e| RunError::SecureAggregation {
                step: "the final evaluation".into(),
                reason: format!("the unmasked held-out counts are refused: {e}: the sum is wrong"),
            },
        )?;
    let Some(counts) = counts.pop() else {
        unreachable!("one model was asked for and its counts were read");
    };
    Ok((counts, calibration.pop()))
}
