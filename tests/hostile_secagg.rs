//! A hostile coordinator against secure aggregation: for each way a
//! coordinator that deviates from the protocol could learn one member's
//! vector from secure sums (run a round twice with one member less and
//! subtract, add members it controls, issue a second certificate under a
//! member's name, run with a threshold a deviating server can beat), the
//! real `node` refuses before its keys for that sum leave. The coordinator
//! runs the rounds for real over mutual TLS on 127.0.0.1, playing the other
//! members honestly with their own certificates and signing keys; the node
//! sends one signed refusal naming the rule, exits with the policy status,
//! and no masked input of it leaves after the refusal.

use std::sync::{Arc, Mutex};

use medfed::NodeRun;
use medfed::hostile::{
    Gathered, Hospital, HostileCoordinator, Identity, Outcome, Script, SecureRun, SecureRuns,
    SplitView, plain_preprocessing, two_feature_csv, two_feature_task,
};
use medfed_wire::pb::{self, submission::Body};
use medfed_wire::{Instruction, SecureAggregation, Task};
use ndarray::Array1;

/// The member the node's certificate names.
const NODE: &str = "st-elsewhere";
/// The other members, played by the coordinator with their real keys.
const PEERS: [&str; 4] = ["peer-a", "peer-b", "peer-c", "peer-d"];
/// Patients at the node's site.
const ROWS: usize = 80;
/// The exit status of a policy refusal.
const POLICY_EXIT: i32 = 7;

/// A logistic FedAvg task of `members` under secure aggregation with
/// `threshold`.
fn secure_task(id: &str, members: &[&str], threshold: u32) -> Task {
    Task {
        secure_aggregation: Some(SecureAggregation {
            threshold,
            fixed_point_bits: 24,
        }),
        ..two_feature_task(id, members)
    }
}

/// Round `round` of training from the model with every weight `weight`.
fn train(task: &Task, round: u32, weight: f64) -> Instruction {
    Instruction::Train {
        round,
        global: Array1::from_elem(task.dimension(), weight),
        preprocessing: plain_preprocessing(task),
        prox_mu: 0.0,
        evaluate: false,
    }
}

/// A run of `work` with the members `names` of `hospital`'s PKI.
fn run(hospital: &Hospital, work: &Instruction, names: &[&str]) -> SecureRun {
    SecureRun {
        work: work.clone(),
        roster: names.iter().map(|name| hospital.identity(name)).collect(),
        split: None,
    }
}

/// The node facing a coordinator that serves `runs` of `task`, run once
/// with `policy` as its `[policy]` table.
struct Attack {
    hospital: Hospital,
    coordinator: HostileCoordinator,
    outcome: Arc<Mutex<Outcome>>,
    run: NodeRun,
}

impl Attack {
    fn run(task: &Task, policy: &str, runs: impl FnOnce(&Hospital) -> Vec<SecureRun>) -> Attack {
        Attack::run_with(&PEERS, task, policy, runs)
    }

    /// [`Attack::run`] with the other members `peers`.
    fn run_with(
        peers: &[&str],
        task: &Task,
        policy: &str,
        runs: impl FnOnce(&Hospital) -> Vec<SecureRun>,
    ) -> Attack {
        let hospital = Hospital::with_peers(NODE, peers, &two_feature_csv(ROWS), "y");
        let coordinator = hospital.coordinator(Script::new(task));
        let director = SecureRuns::new(task, NODE, runs(&hospital));
        let outcome = director.outcome();
        coordinator.direct(Box::new(director));
        let node_file = hospital.node_file(&coordinator.url(), policy, "");
        let run = hospital.run(&node_file);
        Attack {
            hospital,
            coordinator,
            outcome,
            run,
        }
    }

    fn output(&self) -> String {
        format!("{}{}", self.run.stdout, self.run.stderr)
    }

    fn outcome(&self) -> Outcome {
        self.outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The secure-aggregation submissions the coordinator received, in
    /// order.
    fn secagg(&self) -> Vec<pb::SecAggSubmission> {
        self.coordinator
            .received()
            .submissions
            .iter()
            .filter_map(|s| match &s.body {
                Some(Body::Secagg(secagg)) => Some(secagg.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many masked inputs the coordinator received.
    fn masked_inputs(&self) -> usize {
        self.secagg()
            .iter()
            .filter(|s| s.stage == pb::SecAggStage::Masked as i32)
            .count()
    }

    /// Checks that the node sent `secagg` secure-aggregation submissions
    /// (`masked` of them masked inputs) and then one signed refusal of
    /// `step` by `rule`, as its last message: nothing of a step at or after
    /// the refused one left, the node's output names the rule, it exited
    /// with the policy status, the coordinator's side of the protocol found
    /// nothing wrong in what it sent, and its exchange log holds the
    /// refusal as sent. Returns the refusal.
    fn refused(&self, secagg: usize, masked: usize, rule: &str, step: u64) -> pb::Refusal {
        let output = self.output();
        let received = self.coordinator.received();
        let mut expected = vec!["secagg"; secagg];
        expected.push("refusal");
        assert_eq!(received.kinds(), expected, "node output:\n{output}");
        assert_eq!(
            self.run.status.code(),
            Some(POLICY_EXIT),
            "node exit status; output:\n{output}"
        );
        let submitted = received.submissions.last().expect("a submission");
        assert!(submitted.signature_valid, "the refusal is not signed");
        let refusal = submitted.refusal().expect("a refusal").clone();
        assert_eq!(refusal.rule, rule, "{refusal:?}\n{output}");
        assert_eq!(refusal.step, step, "{refusal:?}");
        assert!(
            output.contains(&format!("`{rule}`")),
            "the node's output does not name the rule `{rule}`:\n{output}"
        );
        assert_eq!(self.masked_inputs(), masked, "masked inputs received");
        let late: Vec<u64> = self
            .secagg()
            .iter()
            .map(|s| s.step)
            .filter(|s| step > 0 && *s >= step)
            .collect();
        assert!(late.is_empty(), "sent for refused steps: {late:?}");
        let outcome = self.outcome();
        assert!(outcome.errors.is_empty(), "{:?}\n{output}", outcome.errors);
        let log = self.hospital.exchange_log();
        let refusals: Vec<_> = log.iter().filter(|e| e.kind == "refusal").collect();
        assert_eq!(refusals.len(), 1, "refusals in the exchange log: {log:#?}");
        assert_eq!(
            refusals[0].sha256,
            medfed_audit::Digest::of(&submitted.signed.body).to_string(),
            "the log holds another refusal than the one sent"
        );
        let logged = log
            .iter()
            .filter(|e| e.kind == "secagg" && e.direction == "out")
            .count();
        assert_eq!(logged, secagg, "secure-aggregation messages in the log");
        refusal
    }
}

/// The replay attack: round 1 is run through masked input with roster
/// {node, a, b, c}; then the coordinator starts round 1 again, same model,
/// with roster {node, b, c} (still at the threshold 3). Subtracting the
/// two sums would give a's update. The node refuses the second run at its
/// stage 0, before any key of it leaves: the coordinator holds exactly one
/// masked input from it.
#[test]
fn a_round_run_again_with_one_member_less_is_refused_by_contribution() {
    let task = secure_task("replay", &[NODE, "peer-a", "peer-b", "peer-c"], 3);
    let work = train(&task, 1, 0.0);
    let attack = Attack::run(&task, "", |hospital| {
        vec![
            run(hospital, &work, &[NODE, "peer-a", "peer-b", "peer-c"]),
            run(hospital, &work, &[NODE, "peer-b", "peer-c"]),
        ]
    });
    let outcome = attack.outcome();
    assert_eq!(outcome.started, [1, 4], "{}", attack.output());
    assert_eq!(outcome.masked, [(0, 1)], "{}", attack.output());
    let refusal = attack.refused(3, 1, "contribution", 4);
    assert!(
        refusal.reason.contains("round 1 (step 1"),
        "the refusal does not name where the vector was masked: {refusal:?}"
    );
    // The record beside the vault keeps the contribution for a restart.
    let record = std::fs::read_to_string(
        attack
            .hospital
            .root()
            .join("records.vault.contributions.json"),
    )
    .expect("contributions record");
    assert!(record.contains("\"task_id\": \"replay\""), "{record}");
}

/// The same attack across rounds: round 2 serves round 1's model again,
/// with one member less. Local training is deterministic, so the update is
/// a function of the model, not of the round number: refused the same way.
#[test]
fn the_same_model_in_a_later_round_with_one_member_less_is_refused_by_contribution() {
    let task = secure_task("replay-later", &[NODE, "peer-a", "peer-b", "peer-c"], 3);
    let attack = Attack::run(&task, "", |hospital| {
        vec![
            run(
                hospital,
                &train(&task, 1, 0.25),
                &[NODE, "peer-a", "peer-b", "peer-c"],
            ),
            run(
                hospital,
                &train(&task, 2, 0.25),
                &[NODE, "peer-b", "peer-c"],
            ),
        ]
    });
    let refusal = attack.refused(3, 1, "contribution", 4);
    assert!(refusal.reason.contains("round 1 (step 1"), "{refusal:?}");
}

/// A member the hospital never agreed to: the operator lists a member it
/// controls in the task and its roster. A hospital that set `[policy]
/// members` refuses the task at join: nothing but the refusal leaves.
#[test]
fn a_roster_with_a_member_not_agreed_to_is_refused_by_members() {
    let task = secure_task("stranger", &[NODE, "peer-a", "peer-b", "peer-d"], 3);
    let work = train(&task, 1, 0.0);
    let policy = format!("members = [\"{NODE}\", \"peer-a\", \"peer-b\"]");
    let attack = Attack::run(&task, &policy, |hospital| {
        vec![run(hospital, &work, &[NODE, "peer-a", "peer-b", "peer-d"])]
    });
    let refusal = attack.refused(0, 0, "members", 0);
    assert!(refusal.reason.contains("peer-d"), "{refusal:?}");
    assert!(
        attack.outcome().started.is_empty(),
        "stage 0 was handed out"
    );
}

/// A second certificate under a member's name, without pins: the operator,
/// who runs the CA, issues a new certificate for peer-b and puts it in
/// round 2's roster, after round 1 ran with peer-b's own. The node refuses
/// round 2 by `member_certificates` before its keys leave.
#[test]
fn a_second_certificate_under_a_members_name_within_a_task_is_refused_by_member_certificates() {
    let task = secure_task("two-certificates", &[NODE, "peer-a", "peer-b", "peer-c"], 3);
    let attack = Attack::run(&task, "", |hospital| {
        let second = hospital.second_identity("peer-b");
        let mut round_2 = run(hospital, &train(&task, 2, 0.1), &[NODE, "peer-a"]);
        round_2.roster.push(second);
        round_2.roster.push(hospital.identity("peer-c"));
        vec![
            run(
                hospital,
                &train(&task, 1, 0.0),
                &[NODE, "peer-a", "peer-b", "peer-c"],
            ),
            round_2,
        ]
    });
    let refusal = attack.refused(3, 1, "member_certificates", 4);
    assert!(
        refusal.reason.contains("peer-b") && refusal.reason.contains("earlier in this task"),
        "{refusal:?}"
    );
}

/// The control: the second certificate is a real one the CA issued, and a
/// roster that carries it from the first round is taken (the node cannot
/// tell which of two CA-issued certificates is the hospital's; only that a
/// name changed its certificate within the task).
#[test]
fn a_ca_issued_certificate_used_from_the_first_round_is_taken() {
    let task = secure_task(
        "second-certificate-only",
        &[NODE, "peer-a", "peer-b", "peer-c"],
        3,
    );
    let attack = Attack::run(&task, "", |hospital| {
        let roster: Vec<Identity> = vec![
            hospital.identity(NODE),
            hospital.identity("peer-a"),
            hospital.second_identity("peer-b"),
            hospital.identity("peer-c"),
        ];
        vec![SecureRun {
            work: train(&task, 1, 0.0),
            split: None,
            roster,
        }]
    });
    let output = attack.output();
    assert_eq!(attack.run.status.code(), Some(0), "{output}");
    assert_eq!(attack.outcome().masked, [(0, 1)], "{output}");
    assert!(
        attack.outcome().errors.is_empty(),
        "{:?}",
        attack.outcome().errors
    );
}

/// A threshold a deviating coordinator can beat: 3 of 5 members, below the
/// ⌈2·5/3⌉ = 4 that Bonawitz et al.'s malicious-server analysis needs. The
/// node refuses the task at join by `min_threshold`: nothing but the
/// refusal leaves. With `min_threshold = "3/5"` set by the hospital, the
/// same task is taken (and its round runs through masked input).
#[test]
fn a_threshold_below_two_thirds_of_the_members_is_refused_by_min_threshold() {
    let members = [NODE, "peer-a", "peer-b", "peer-c", "peer-d"];
    let task = secure_task("low-threshold", &members, 3);
    let work = train(&task, 1, 0.0);
    let runs = |hospital: &Hospital| vec![run(hospital, &work, &members)];
    let attack = Attack::run(&task, "", runs);
    let refusal = attack.refused(0, 0, "min_threshold", 0);
    assert!(
        refusal.reason.contains("threshold 3 of 5") && refusal.reason.contains("at least 4"),
        "{refusal:?}"
    );
    assert!(
        attack.outcome().started.is_empty(),
        "stage 0 was handed out"
    );

    let lenient = Attack::run(&task, "min_threshold = \"3/5\"", runs);
    let output = lenient.output();
    assert_eq!(lenient.run.status.code(), Some(0), "{output}");
    assert_eq!(lenient.outcome().masked, [(0, 1)], "{output}");
    assert_eq!(lenient.masked_inputs(), 1, "{output}");
}

// ------------------------------------------- split views of one round

/// The split-view attack of the issue, played for real against the node
/// (member 0, the victim) with `peers` as the other members and threshold
/// `t` (the hospital lowers its floor to `t` of n so that the attack's
/// threshold is taken): the coordinator routes to the node only the shares
/// of members 1..t (the fewest the node accepts), shows each member the
/// survivor set in `shown`, pools every signature into each unmasking
/// request and counts every share it gets back.
fn split_view(peers: &[&str], t: u32, shown: Vec<Vec<u32>>) -> (Attack, Gathered) {
    split_view_seeing(peers, t, (1..t).collect(), shown)
}

/// [`split_view`], routing to the node the shares of `node_sees`.
fn split_view_seeing(
    peers: &[&str],
    t: u32,
    node_sees: Vec<u32>,
    shown: Vec<Vec<u32>>,
) -> (Attack, Gathered) {
    let mut members = vec![NODE];
    members.extend_from_slice(peers);
    let n = members.len();
    let task = secure_task(&format!("split-view-{n}-{t}"), &members, t);
    let work = train(&task, 1, 0.0);
    let attack = Attack::run_with(
        peers,
        &task,
        &format!("min_threshold = \"{t}/{n}\""),
        |hospital| {
            vec![SecureRun {
                split: Some(SplitView { node_sees, shown }),
                ..run(hospital, &work, &members)
            }]
        },
    );
    let outcome = attack.outcome();
    assert!(
        outcome.errors.is_empty(),
        "{:?}\n{}",
        outcome.errors,
        attack.output()
    );
    assert_eq!(outcome.masked.len(), 1, "{}", attack.output());
    (attack, outcome.gathered)
}

/// What the coordinator gathered cannot remove the victim's masks: it needs
/// t shares of the victim's self-mask seed and, for each member the victim
/// masked with (1..t), t shares of that member's or the victim's mask key;
/// fewer than t Shamir shares say nothing. And what it holds as a sum is
/// not the victim's input: the other members masked zeros, so the sum of
/// the masked inputs minus theirs would be the victim's vector (an update
/// of a few units at most) if the masks were gone; every value of it is
/// instead a uniformly random ring element, far out of that range (a value
/// within ±10⁴ by chance has probability 2·10⁴·2²⁴/2⁶⁴ ≈ 1.8·10⁻⁸).
fn assert_victim_hidden(gathered: &Gathered, t: u32, output: &str) {
    let enough = |shares: &std::collections::BTreeMap<u32, usize>, m: u32| {
        shares.get(&m).copied().unwrap_or(0) >= t as usize
    };
    let strippable = enough(&gathered.self_mask_shares, 0)
        && (1..t)
            .all(|p| enough(&gathered.mask_key_shares, p) || enough(&gathered.mask_key_shares, 0));
    assert!(
        !strippable,
        "the coordinator can unmask the victim: {gathered:?}\n{output}"
    );
    let len = gathered.masked.first().map_or(0, |m| m.values.len());
    assert!(len > 0, "no masked input gathered: {gathered:?}");
    let mut sum = vec![0u64; len];
    for input in &gathered.masked {
        for (acc, v) in sum.iter_mut().zip(&input.values) {
            *acc = acc.wrapping_add(*v);
        }
    }
    let decoded = medfed_secure::secagg::FixedPoint::new(24)
        .expect("encoding")
        .decode(&sum);
    assert!(
        decoded.iter().all(|v| v.abs() > 1e4),
        "a value of the masked sum is within the range of an update: {decoded:?}"
    );
}

/// n = 5, t = 3, the sequence: the node (victim) gets only the
/// shares of 1 and 2 and is told everyone survived; 1 is told {2} dropped,
/// 2 is told {1} dropped, 3 and 4 are told {1, 2} dropped. The node refuses
/// to sign a survivor set with members whose shares never reached it, so
/// no unmasking share of it leaves, and no other set gathers 3 signatures:
/// the coordinator gets no share at all.
#[test]
fn the_split_view_attack_at_five_members_is_refused_at_the_consistency_check() {
    let shown = vec![
        vec![0, 1, 2, 3, 4],
        vec![0, 1, 3, 4],
        vec![0, 2, 3, 4],
        vec![0, 3, 4],
        vec![0, 3, 4],
    ];
    let (attack, gathered) = split_view(&PEERS, 3, shown);
    let output = attack.output();
    assert!(
        !gathered.node_signed && !gathered.node_unmasked,
        "{gathered:?}\n{output}"
    );
    assert_ne!(attack.run.status.code(), Some(0), "{output}");
    assert!(
        output.contains("survivor set") && output.contains("holds no shares of"),
        "the node does not say why:\n{output}"
    );
    assert!(
        gathered.self_mask_shares.is_empty() && gathered.mask_key_shares.is_empty(),
        "{gathered:?}"
    );
    assert_victim_hidden(&gathered, 3, &output);
}

/// n = 5, t = 3, the node shown the only set it can sign ({0, 1, 2}, the
/// members it saw), the others sets that would reveal 1's and 2's mask
/// keys: the node signs, but the unmasking request carries one valid
/// signature on its set (its own), not 3, and it reveals nothing.
#[test]
fn a_survivor_set_signed_by_fewer_than_the_threshold_gets_no_unmasking_share() {
    let shown = vec![
        vec![0, 1, 2],
        vec![0, 1, 3, 4],
        vec![0, 2, 3, 4],
        vec![0, 3, 4],
        vec![0, 3, 4],
    ];
    let (attack, gathered) = split_view(&PEERS, 3, shown);
    let output = attack.output();
    assert!(
        gathered.node_signed && !gathered.node_unmasked,
        "{gathered:?}\n{output}"
    );
    assert_ne!(attack.run.status.code(), Some(0), "{output}");
    assert!(
        output.contains("1 valid signatures") && output.contains("the threshold is 3"),
        "the node does not say why:\n{output}"
    );
    assert_victim_hidden(&gathered, 3, &output);
}

/// n = 7, t = 4: the node sees members 1–3, and the coordinator shows the
/// four members it did not route to the node a set with them and the node
/// but without 1–3 (which would reveal 1–3's mask keys and the node's
/// self-mask seed from four signers), and 1–3 sets of their own. The node
/// refuses its set; four signatures never gather on one set that holds the
/// node.
#[test]
fn the_split_view_attack_at_seven_members_gets_no_share_of_the_victim() {
    let peers = ["peer-a", "peer-b", "peer-c", "peer-d", "peer-e", "peer-f"];
    let shown = vec![
        vec![0, 4, 5, 6],
        vec![0, 1, 4, 5, 6],
        vec![0, 2, 4, 5, 6],
        vec![0, 3, 4, 5, 6],
        vec![0, 4, 5, 6],
        vec![0, 4, 5, 6],
        vec![0, 4, 5, 6],
    ];
    let (attack, gathered) = split_view(&peers, 4, shown);
    let output = attack.output();
    assert!(
        !gathered.node_signed && !gathered.node_unmasked,
        "{gathered:?}\n{output}"
    );
    assert_victim_hidden(&gathered, 4, &output);
    // Three signers (4, 5, 6) on {0, 4, 5, 6}: below the threshold, so
    // they too refuse.
    assert!(
        gathered
            .peer_refusals
            .iter()
            .filter(|r| r.contains("valid signatures") && r.contains("the threshold is 4"))
            .count()
            >= 3,
        "{gathered:?}"
    );
}

/// The control of the split-view tests: a coordinator that routes every
/// share to everyone and shows everyone the same survivor set gets the
/// node's unmasking shares (the harness plays the whole protocol, so the
/// refusals above are the node's doing), and the shares it counts rebuild
/// every self-mask seed.
#[test]
fn one_survivor_set_shown_to_everyone_is_unmasked() {
    let everyone = vec![0, 1, 2, 3, 4];
    let (attack, gathered) = split_view_seeing(&PEERS, 3, vec![1, 2, 3, 4], vec![everyone; 5]);
    let output = attack.output();
    assert!(
        gathered.node_signed && gathered.node_unmasked,
        "{gathered:?}\n{output}"
    );
    for member in 0..5 {
        assert_eq!(
            gathered.self_mask_shares.get(&member),
            Some(&5),
            "{gathered:?}"
        );
    }
    assert!(gathered.mask_key_shares.is_empty(), "{gathered:?}");
    assert!(gathered.peer_refusals.is_empty(), "{gathered:?}");
}
