//! The privacy section of the run summary: secure aggregation and
//! DP-FedAvg as the run applied them, and what each site reported
//! spending.

use serde::Serialize;

/// The privacy protections a run had.
#[derive(Clone, Debug, Serialize)]
pub struct PrivacySummary {
    /// Secure aggregation: the coordinator saw only the sum of the
    /// surviving members' masked inputs.
    pub secure_aggregation: bool,
    /// Shares that rebuild a secret, and the fewest members every stage
    /// needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// Fractional bits of the fixed-point encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_point_bits: Option<u32>,
    /// Largest encoding error of one summed value: n x 2^-(bits+1) for n
    /// members (divided by the round's rows, or contributors under DP, in
    /// the mean update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum_error_bound: Option<f64>,
    /// What the per-round held-out scores cover under secure aggregation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_held_out: Option<&'static str>,
    /// What travels masked under secure aggregation, and what the
    /// coordinator learns instead of each member's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<&'static str>,
    /// DP-FedAvg on the training rounds (absent: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differential_privacy: Option<DpSummary>,
}

/// DP-FedAvg as a run applied it, and what each site reported spending.
#[derive(Clone, Debug, Serialize)]
pub struct DpSummary {
    /// `local` (each site adds its share of the noise under secure
    /// aggregation, or without it the full noise), `central` (sites clip
    /// only and the coordinator adds the noise
    /// to the sum), or `mixed` (without secure aggregation, some sites of
    /// each: the coordinator noised every sum that held a clipped-only
    /// update). Without secure aggregation it is what the sites reported
    /// with their last update; before any did, `decided by each site`.
    pub placement: String,
    /// Whether the guarantee of some site needs the coordinator to be
    /// trusted (central noise: it sees that site's clipped update, and the
    /// sum, before noising).
    pub coordinator_trusted: bool,
    /// The noise multiplier σ.
    pub noise_multiplier: f64,
    /// The clip norm C.
    pub clip_norm: f64,
    /// The standard deviation each site added per coordinate (local), or
    /// the coordinator added to the sum (central, or mixed).
    pub noise_std: f64,
    /// The privacy model in a paragraph.
    pub description: String,
    /// Members are weighted equally, and no row counts or training loss
    /// are released in DP rounds.
    pub weighting: &'static str,
    /// Each site's spend as it reported it with its last update.
    pub sites: Vec<SiteSpend>,
}

/// One site's reported spend.
#[derive(Clone, Debug, Serialize)]
pub struct SiteSpend {
    /// The site.
    pub site: String,
    /// Rounds its accountant has charged (over every task on its vault).
    pub rounds: u64,
    /// ε it reports, by its Rényi-DP accountant.
    pub epsilon: f64,
    /// The δ it holds at.
    pub delta: f64,
    /// Its ε budget.
    pub budget_epsilon: f64,
    /// For comparison: the exact ε of the same rounds at the task's σ
    /// (Balle & Wang 2018), assuming every round was at that σ.
    pub analytic_epsilon: Option<f64>,
    /// Where its last update's noise was added, as it reported it.
    pub placement: String,
}

/// The summary of `task`'s privacy, with the spends the sites reported.
pub(super) fn privacy_summary(
    task: &medfed_wire::Task,
    spent: &std::collections::BTreeMap<String, medfed_wire::PrivacySpend>,
) -> Option<PrivacySummary> {
    let secure = task.secure_aggregation;
    let dp = task.dp_config();
    if secure.is_none() && dp.is_none() {
        return None;
    }
    let differential_privacy = dp.map(|dp| {
        use medfed_secure::dp::NoisePlacement;
        let reported: std::collections::BTreeSet<&'static str> =
            spent.values().map(|s| s.placement.name()).collect();
        let (placement, central) = match dp.placement() {
            NoisePlacement::Central => match reported.len() {
                0 => ("decided by each site".to_owned(), true),
                1 => {
                    let only = reported.iter().next().copied().unwrap_or("central");
                    (only.to_owned(), only == NoisePlacement::Central.name())
                }
                _ => ("mixed".to_owned(), true),
            },
            // Under secure aggregation every site adds its share.
            _ => ("local".to_owned(), false),
        };
        // The noise per coordinate of the sum as the sites placed it:
        // the coordinator's σ·C when any site relied on it.
        let actual = if central {
            dp
        } else {
            task.member_dp_config(false).unwrap_or(dp)
        };
        let sites = spent
            .iter()
            .map(|(site, s)| SiteSpend {
                site: site.clone(),
                rounds: s.rounds,
                epsilon: s.epsilon,
                delta: s.delta,
                budget_epsilon: s.budget_epsilon,
                analytic_epsilon: medfed_secure::dp::analytic_gaussian_epsilon(
                    s.noise_multiplier / (s.rounds as f64).sqrt(),
                    s.delta,
                )
                .ok(),
                placement: s.placement.name().to_owned(),
            })
            .collect();
        DpSummary {
            placement,
            coordinator_trusted: central,
            noise_multiplier: dp.noise_multiplier(),
            clip_norm: dp.clip_norm(),
            noise_std: actual
                .site_noise_std()
                .or(actual.central_noise_std())
                .unwrap_or(f64::NAN),
            description: actual.describe(),
            weighting: "every contributing site weighs the same (sum of clipped updates / \
                        number of contributors); row counts and the training loss are not \
                        released in DP rounds",
            sites,
        }
    });
    Some(PrivacySummary {
        secure_aggregation: secure.is_some(),
        threshold: secure.map(|s| s.threshold),
        fixed_point_bits: secure.map(|s| s.fixed_point_bits),
        sum_error_bound: secure.map(|s| {
            medfed_secure::secagg::FixedPoint::new(s.fixed_point_bits)
                .map_or(f64::NAN, |f| f.sum_error_bound(task.members.len() as u32))
        }),
        round_held_out: secure.map(|_| {
            "overall only: each round's held-out counts are summed masked, so no site's own \
             per-round scores are seen"
        }),
        masked: secure.map(|_| {
            "everything the members send is summed masked: the preprocessing statistics (row \
             and category counts, coarse ranges as counts of sites per 1-2-5 grid value, \
             range-scaled sums and median histograms), every training round's update or terms \
             with its held-out counts, and the final evaluation; per-site rows, notes and \
             scores are not seen, only totals"
        }),
        differential_privacy,
    })
}
