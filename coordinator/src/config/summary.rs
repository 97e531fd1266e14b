//! What `coordinator config check` prints: the task in a few lines, and
//! what a run's rounds cost each site under DP.

use super::{Aggregation, FailedRound, REFERENCE_DELTA, TaskConfig};

impl TaskConfig {
    /// What the task defines, in a few lines (for `coordinator config
    /// check`): members and quorum, model and features, algorithm and
    /// rounds, evaluation, timeouts.
    pub fn summary(&self) -> String {
        let t = &self.task;
        let own: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| **c != medfed_model::ColumnSpec::numeric(c.name.clone()))
            .map(|c| c.name.as_str())
            .collect();
        let mut out = format!(
            "  members     {} (quorum {})\n",
            t.members.join(", "),
            self.quorum
        );
        out.push_str(&format!(
            "  model       {}, target {}, {} features, {} parameters\n",
            t.model,
            t.target,
            t.features.len(),
            t.dimension()
        ));
        out.push_str(&format!(
            "  columns     {}\n",
            if own.is_empty() {
                "every feature standardised, missing values filled with the mean".to_owned()
            } else {
                format!("own preprocessing for {}", own.join(", "))
            }
        ));
        out.push_str(&format!(
            "  algorithm   {}, aggregation {}, at most {} rounds, l2 {}, tolerance {:e}\n",
            self.algorithm,
            match self.aggregation {
                Aggregation::Fedavg => "fedavg",
                Aggregation::Median => "median",
                Aggregation::TrimmedMean => "trimmed-mean",
            },
            t.rounds,
            t.l2,
            self.tolerance
        ));
        out.push_str(&format!(
            "  evaluation  {}% of each site's rows held out (seed {}), {}, baselines {}\n",
            t.holdout_fraction * 100.0,
            t.split_seed,
            match self.evaluate_every {
                0 if t.differential_privacy.is_some() && t.secure_aggregation.is_none() => {
                    "none: DP sites release no held-out counts in clear".to_owned()
                }
                0 if t.differential_privacy.is_some() => {
                    "after training only (DP sites release no held-out counts with a round)"
                        .to_owned()
                }
                0 => "after training only".to_owned(),
                1 => "every round".to_owned(),
                n => format!("every {n} rounds"),
            },
            if self.baselines { "on" } else { "off" }
        ));
        out.push_str(&format!(
            "  timeouts    join {} s, each step {} s\n",
            self.join_timeout.as_secs(),
            self.step_timeout.as_secs()
        ));
        if let Some(secure) = &t.secure_aggregation {
            out.push_str(&format!(
                "  privacy     secure aggregation, threshold {} of {}, {} fixed-point bits; a \
                 round that cannot be summed {}\n",
                secure.threshold,
                t.members.len(),
                secure.fixed_point_bits,
                match self.failed_round {
                    FailedRound::Stop => "stops the run",
                    FailedRound::Skip => "is skipped, the model kept",
                }
            ));
        }
        if let Some(dp) = t.dp_config() {
            out.push_str(&format!(
                "  privacy     DP-FedAvg, σ = {}, C = {}, {}; {}\n",
                dp.noise_multiplier(),
                dp.clip_norm(),
                match dp.placement() {
                    medfed_secure::dp::NoisePlacement::Central =>
                        "noise placed by each site: the full σ·C on its own update by \
                         default, or clipped only for a site that trusts the coordinator \
                         ([policy] trust_coordinator_noise), whose sums the coordinator \
                         then noises; the sites release the preprocessing statistics in \
                         clear only with [policy] dp_unnoised = \"clear-statistics\"",
                    _ => "local noise (each site adds its share under secure aggregation)",
                },
                reference_cost(dp.noise_multiplier(), t.rounds)
            ));
        }
        out
    }
}

/// What `rounds` rounds at `noise_multiplier` cost a site at
/// [`REFERENCE_DELTA`], by the accountant and the exact analysis.
pub fn reference_cost(noise_multiplier: f64, rounds: u32) -> String {
    let Ok(budget) = medfed_secure::dp::Budget::new(f64::MAX, REFERENCE_DELTA) else {
        return String::new();
    };
    let mut accountant = medfed_secure::dp::Accountant::new(budget);
    for _ in 0..rounds {
        if accountant
            .try_spend(noise_multiplier, |_| Ok::<(), std::io::Error>(()))
            .is_err()
        {
            return String::new();
        }
    }
    format!(
        "all {rounds} rounds cost each site ε = {:.3} at δ = {REFERENCE_DELTA:e} (exact analysis: \
         ε = {:.3}); each site's own budget decides how many it takes part in",
        accountant.spent().epsilon,
        accountant.exact_epsilon()
    )
}
