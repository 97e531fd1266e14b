//! Secure aggregation end to end, with real cryptography: every message
//! goes through its byte encoding, and the server is watched through the
//! test-only `inspect` hook.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::{Rng, SeedableRng};
use medfed_secure::secagg::{
    AdvertiseKeys, Aggregate, Client, ClientChecked, ClientMasked, ClientShared,
    ConsistencyRequest, ConsistencySignature, EncodedInput, FixedPoint, Inspect, KeyList,
    MaskedInput, Member, Observed, RoutedShares, SecAggConfig, SecAggError, SecAggParams, Server,
    ServerChecking, ServerMasking, ShareKeys, Stage, UnmaskRequest, UnmaskResponse,
};
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

// ---------------------------------------------------------------- fixtures

struct Fixture {
    params: SecAggParams,
    signing: Vec<Ed25519KeyPair>,
}

fn ed25519_key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn fixture_with(n: u32, t: u32, vector_len: usize, round: u64) -> Fixture {
    let signing: Vec<_> = (0..n).map(|_| ed25519_key()).collect();
    let params = SecAggParams::new(SecAggConfig {
        task: "secagg-test".into(),
        round,
        threshold: t,
        members: signing
            .iter()
            .enumerate()
            .map(|(i, key)| Member {
                name: format!("hospital-{i}"),
                verify_key: key.public_key().as_ref().try_into().unwrap(),
            })
            .collect(),
        vector_len,
        fixed_point: FixedPoint::default(),
    })
    .unwrap();
    Fixture { params, signing }
}

fn fixture(n: u32, t: u32, vector_len: usize) -> Fixture {
    fixture_with(n, t, vector_len, 1)
}

/// Deterministic pseudo-random inputs in [-10, 10).
fn random_inputs(fx: &Fixture, seed: u64) -> (Vec<Vec<f64>>, Vec<EncodedInput>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let len = fx.params.vector_len();
    let raw: Vec<Vec<f64>> = (0..fx.params.members())
        .map(|_| {
            (0..len)
                .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0)
                .collect()
        })
        .collect();
    let encoded = raw
        .iter()
        .map(|x| fx.params.encode_input(x).unwrap())
        .collect();
    (raw, encoded)
}

/// The sum in the ring of the encoded inputs of `members`.
fn ring_sum<'a>(inputs: impl IntoIterator<Item = &'a EncodedInput>, len: usize) -> Vec<u64> {
    let mut sum = vec![0u64; len];
    for input in inputs {
        for (acc, v) in sum.iter_mut().zip(input.as_slice()) {
            *acc = acc.wrapping_add(*v);
        }
    }
    sum
}

/// Records everything the server shows the hook.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Observation>>>);

/// One vector the server showed, and what it was.
type Observation = (Observed, Vec<u64>);

impl Inspect for Recorder {
    fn observe(&mut self, what: Observed, values: &[u64]) {
        self.0.lock().unwrap().push((what, values.to_vec()));
    }
}

/// Every message crosses the "wire" as bytes.
fn wire<T>(message: &T, to: fn(&T) -> Vec<u8>, from: fn(&[u8]) -> Result<T, SecAggError>) -> T {
    from(&to(message)).unwrap()
}

/// Runs `f`, adding its duration to `clock`.
fn timed<R>(clock: &mut Duration, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let out = f();
    *clock += start.elapsed();
    out
}

/// Rounds 0 and 1. Members listed in `vanish` with `AdvertiseKeys` or
/// `ShareKeys` stop before sending that message.
fn run_to_masking(
    fx: &Fixture,
    vanish: &BTreeMap<u32, Stage>,
    server: Server,
) -> Result<(ServerMasking, Vec<(ClientShared, RoutedShares)>), SecAggError> {
    run_to_masking_timed(fx, vanish, server, &mut Duration::default())
}

/// As [`run_to_masking`], adding the time spent in the server to
/// `server_time`.
fn run_to_masking_timed(
    fx: &Fixture,
    vanish: &BTreeMap<u32, Stage>,
    mut server: Server,
    server_time: &mut Duration,
) -> Result<(ServerMasking, Vec<(ClientShared, RoutedShares)>), SecAggError> {
    let mut advertised = Vec::new();
    for (id, key) in (0..).zip(&fx.signing) {
        if vanish.get(&id) == Some(&Stage::AdvertiseKeys) {
            continue;
        }
        let (client, message) = Client::new(fx.params.clone(), id)?.advertise_keys(key);
        let message = wire(&message, AdvertiseKeys::to_bytes, AdvertiseKeys::from_bytes);
        timed(server_time, || server.receive(message))?;
        advertised.push(client);
    }
    let (mut server, list) = timed(server_time, || server.finish())?;
    let list = wire(&list, KeyList::to_bytes, KeyList::from_bytes);
    let mut shared = BTreeMap::new();
    for client in advertised {
        let (client, message) = client.share_keys(&list)?;
        if vanish.get(&message.sender) == Some(&Stage::ShareKeys) {
            continue;
        }
        let sender = message.sender;
        let message = wire(&message, ShareKeys::to_bytes, ShareKeys::from_bytes);
        timed(server_time, || server.receive(message))?;
        shared.insert(sender, client);
    }
    let (server, routed) = timed(server_time, || server.finish())?;
    let mut pairs = Vec::new();
    for shares in routed {
        let shares = wire(&shares, RoutedShares::to_bytes, RoutedShares::from_bytes);
        let client = shared.remove(&shares.recipient).unwrap();
        pairs.push((client, shares));
    }
    assert!(shared.is_empty(), "every member that shared got its shares");
    Ok((server, pairs))
}

/// Round 3: every member in `masked` signs the survivor set, unless `vanish`
/// stops it at `ConsistencyCheck` (it sent its masked input, never signs).
fn run_check(
    fx: &Fixture,
    masked: Vec<ClientMasked>,
    vanish: &BTreeMap<u32, Stage>,
    server: ServerChecking,
    request: &ConsistencyRequest,
    server_time: &mut Duration,
) -> Result<(ServerChecking, Vec<ClientChecked>), SecAggError> {
    let mut server = server;
    let request = wire(
        request,
        ConsistencyRequest::to_bytes,
        ConsistencyRequest::from_bytes,
    );
    let mut checked = Vec::new();
    for client in masked {
        if vanish.get(&client.id()) == Some(&Stage::ConsistencyCheck) {
            continue;
        }
        let key = &fx.signing[client.id() as usize];
        let (client, signature) = client.check(&request, key)?;
        let signature = wire(
            &signature,
            ConsistencySignature::to_bytes,
            ConsistencySignature::from_bytes,
        );
        timed(server_time, || server.receive(signature))?;
        checked.push(client);
    }
    Ok((server, checked))
}

/// A whole round. `vanish` says at which step a member stops; a member that
/// stops at `ConsistencyCheck` or `Unmasking` has sent its masked input but
/// never signs, or never answers.
fn run_round(
    fx: &Fixture,
    inputs: &[EncodedInput],
    vanish: &BTreeMap<u32, Stage>,
    server: Server,
) -> Result<Aggregate, SecAggError> {
    run_round_timed(fx, inputs, vanish, server, &mut Duration::default())
}

/// As [`run_round`], adding the time spent in the server to `server_time`.
fn run_round_timed(
    fx: &Fixture,
    inputs: &[EncodedInput],
    vanish: &BTreeMap<u32, Stage>,
    server: Server,
    server_time: &mut Duration,
) -> Result<Aggregate, SecAggError> {
    let (mut server, pairs) = run_to_masking_timed(fx, vanish, server, server_time)?;
    let mut masked: Vec<ClientMasked> = Vec::new();
    for (client, shares) in pairs {
        let id = shares.recipient;
        let (client, message) = client.mask_input(&shares, &inputs[id as usize])?;
        if vanish.get(&id) == Some(&Stage::MaskedInput) {
            continue;
        }
        let message = wire(&message, MaskedInput::to_bytes, MaskedInput::from_bytes);
        timed(server_time, || server.receive(message))?;
        masked.push(client);
    }
    let (server, check) = timed(server_time, || server.finish())?;
    let (server, checked) = run_check(fx, masked, vanish, server, &check, server_time)?;
    let (mut server, request) = timed(server_time, || server.finish())?;
    let request = wire(&request, UnmaskRequest::to_bytes, UnmaskRequest::from_bytes);
    for client in checked {
        if vanish.get(&client.id()) == Some(&Stage::Unmasking) {
            continue;
        }
        let response = client.unmask(&request)?;
        let response = wire(
            &response,
            UnmaskResponse::to_bytes,
            UnmaskResponse::from_bytes,
        );
        timed(server_time, || server.receive(response))?;
    }
    timed(server_time, || server.finish())
}

// ------------------------------------------- 1. the server sees only sums

#[test]
fn server_never_holds_a_single_input_and_gets_the_exact_sum() {
    let fx = fixture(5, 3, 31);
    let (raw, encoded) = random_inputs(&fx, 1);
    let recorder = Recorder::default();
    let server = Server::with_inspector(fx.params.clone(), Box::new(recorder.clone()));
    let aggregate = run_round(&fx, &encoded, &BTreeMap::new(), server).unwrap();

    // Bit for bit in the ring.
    assert_eq!(aggregate.sum, ring_sum(&encoded, 31));
    assert_eq!(aggregate.contributors, vec![0, 1, 2, 3, 4]);
    // And as f64, within the stated precision.
    let fp = fx.params.fixed_point();
    let bound = fp.sum_error_bound(5) + 1e-12;
    for (i, got) in aggregate.decode().iter().enumerate() {
        let want: f64 = raw.iter().map(|x| x[i]).sum();
        assert!((got - want).abs() <= bound, "index {i}: {got} vs {want}");
    }

    let seen = recorder.0.lock().unwrap();
    // 5 masked inputs, 5 running sums, 5 self masks removed, 1 output.
    assert_eq!(
        seen.len(),
        16,
        "{:?}",
        seen.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    // "Close" means within 2^20 steps (2^-4 at f = 24): far looser than
    // the fixed-point precision, so near misses count as leaks too.
    let close = |a: u64, b: u64| (a.wrapping_sub(b) as i64).unsigned_abs() <= 1 << 20;
    for (what, values) in seen.iter() {
        for (member, input) in encoded.iter().enumerate() {
            let near = values
                .iter()
                .zip(input.as_slice())
                .filter(|(a, b)| close(**a, **b))
                .count();
            if *what == Observed::Output {
                // The sum of five inputs may come near one input in a
                // coordinate by chance, never in all of them.
                assert!(near < 31, "the output equals member {member}'s input");
            } else {
                assert_eq!(
                    near, 0,
                    "{what:?} is near member {member}'s input in {near} places"
                );
            }
        }
    }
    assert_eq!(
        seen.last().unwrap(),
        &(Observed::Output, aggregate.sum.clone())
    );
}

// ------------------------------------------------------------- 2. dropout

fn vanish(entries: &[(u32, Stage)]) -> BTreeMap<u32, Stage> {
    entries.iter().copied().collect()
}

#[test]
fn members_that_vanish_after_sending_their_input_are_still_summed() {
    let fx = fixture(5, 3, 31);
    let (_, encoded) = random_inputs(&fx, 2);
    let all = ring_sum(&encoded, 31);
    for gone in [
        vec![(3, Stage::Unmasking)],
        vec![(0, Stage::Unmasking), (4, Stage::Unmasking)],
    ] {
        let aggregate = run_round(
            &fx,
            &encoded,
            &vanish(&gone),
            Server::new(fx.params.clone()),
        )
        .unwrap();
        assert_eq!(aggregate.sum, all, "vanished: {gone:?}");
        assert_eq!(aggregate.contributors, vec![0, 1, 2, 3, 4]);
    }
}

#[test]
fn members_that_vanish_before_their_input_are_left_out_exactly() {
    let fx = fixture(5, 3, 31);
    let (_, encoded) = random_inputs(&fx, 3);
    let cases = [
        // After sharing keys: their pairwise masks must be rebuilt.
        (vec![(1, Stage::MaskedInput)], vec![0, 2, 3, 4]),
        (
            vec![(1, Stage::MaskedInput), (3, Stage::MaskedInput)],
            vec![0, 2, 4],
        ),
        // Before sharing keys: never part of the masks at all.
        (vec![(2, Stage::ShareKeys)], vec![0, 1, 3, 4]),
        (
            vec![(4, Stage::AdvertiseKeys), (0, Stage::ShareKeys)],
            vec![1, 2, 3],
        ),
        // A mix across every step, down to exactly t answering.
        (
            vec![(0, Stage::ShareKeys), (2, Stage::MaskedInput)],
            vec![1, 3, 4],
        ),
        (
            vec![(0, Stage::MaskedInput), (1, Stage::Unmasking)],
            vec![1, 2, 3, 4],
        ),
    ];
    for (gone, kept) in cases {
        let aggregate = run_round(
            &fx,
            &encoded,
            &vanish(&gone),
            Server::new(fx.params.clone()),
        )
        .unwrap();
        let want = ring_sum(kept.iter().map(|&i| &encoded[i as usize]), 31);
        assert_eq!(aggregate.sum, want, "vanished: {gone:?}");
        assert_eq!(aggregate.contributors, kept);
    }
}

#[test]
fn three_of_five_vanishing_fails_the_round_instead_of_a_wrong_sum() {
    let fx = fixture(5, 3, 8);
    let (_, encoded) = random_inputs(&fx, 4);
    let late = vanish(&[
        (0, Stage::Unmasking),
        (2, Stage::Unmasking),
        (4, Stage::Unmasking),
    ]);
    let err = run_round(&fx, &encoded, &late, Server::new(fx.params.clone())).unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::TooFewMembers {
                stage: Stage::Unmasking,
                got: 2,
                threshold: 3
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("2 members took part, the threshold is 3"),
        "{err}"
    );

    let early = vanish(&[
        (0, Stage::MaskedInput),
        (1, Stage::MaskedInput),
        (2, Stage::ShareKeys),
    ]);
    let err = run_round(&fx, &encoded, &early, Server::new(fx.params.clone())).unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::TooFewMembers {
                stage: Stage::MaskedInput,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
}

// ------------------------------------------------------- 3. late member

#[test]
fn a_late_input_cannot_be_unmasked_after_its_sender_was_declared_dropped() {
    let fx = fixture(5, 3, 31);
    let (_, encoded) = random_inputs(&fx, 5);
    let late_id = 2u32;
    let (mut server, pairs) =
        run_to_masking(&fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
    let mut masked = Vec::new();
    let mut late = None;
    for (client, shares) in pairs {
        let id = shares.recipient;
        let (client, message) = client.mask_input(&shares, &encoded[id as usize]).unwrap();
        if id == late_id {
            // Delayed in the network: the server closes round 2 without it.
            late = Some((client, message));
        } else {
            server.receive(message).unwrap();
            masked.push(client);
        }
    }
    let (late_client, late_input) = late.unwrap();
    let (server, check) = server.finish().unwrap();
    assert_eq!(check.survivors, vec![0, 1, 3, 4]);
    let (server, checked) = run_check(
        &fx,
        masked,
        &BTreeMap::new(),
        server,
        &check,
        &mut Duration::default(),
    )
    .unwrap();
    let (mut server, request) = server.finish().unwrap();
    assert_eq!(request.signatures.len(), 4);

    let mut responses = Vec::new();
    for client in checked {
        let response = client.unmask(&request).unwrap();
        // Nothing about the late member's self mask leaves an honest member.
        assert!(response.self_mask_shares.iter().all(|s| s.owner != late_id));
        assert!(response.mask_key_shares.iter().any(|s| s.owner == late_id));
        server.receive(response.clone()).unwrap();
        responses.push(response);
    }
    let (aggregate, knowledge) = server.finish_with_knowledge().unwrap();
    let others: Vec<_> = [0usize, 1, 3, 4].iter().map(|&i| &encoded[i]).collect();
    assert_eq!(aggregate.sum, ring_sum(others, 31));

    // Now the late input arrives. With the late member's rebuilt mask key the
    // server strips every pairwise mask, and what is left is still hidden by
    // the self mask: exactly x + PRG(b), never x.
    let stripped = knowledge.strip_pairwise_masks(&late_input).unwrap();
    let x = encoded[late_id as usize].as_slice();
    let expected: Vec<u64> = x
        .iter()
        .zip(late_client.self_mask())
        .map(|(x, m)| x.wrapping_add(*m))
        .collect();
    assert_eq!(stripped, expected, "only the self mask is left");
    let near = stripped
        .iter()
        .zip(x)
        .filter(|(a, b)| (a.wrapping_sub(**b) as i64).unsigned_abs() <= 1 << 20)
        .count();
    assert_eq!(near, 0, "the late input is visible in {near} places");
    // And the self-mask seed cannot be rebuilt from anything received.
    assert!(knowledge.self_mask_shares(late_id).is_empty());
    let err = knowledge.rebuild_self_mask_seed(late_id).unwrap_err();
    assert!(
        matches!(err, SecAggError::ReconstructionFailed { owner: 2, .. }),
        "{err}"
    );
    // A survivor's seed, by contrast, was rebuilt from what was received.
    assert!(knowledge.rebuild_self_mask_seed(0).is_ok());
    // And the late message is refused by a server that has moved on: the
    // round state that could add it no longer exists, and the sum excludes it.
    assert_eq!(aggregate.contributors, vec![0, 1, 3, 4]);
}

/// A signature by member `key_of`'s key on bytes that are not the
/// consistency transcript: it verifies for no member's claim.
fn client_signature_by(fx: &Fixture, key_of: usize) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(fx.signing[key_of].sign(b"not a transcript").as_ref());
    out
}

/// Everything a hostile server gathered in one attempt: the revealed shares
/// of each member's two secrets, counted by owner, and who refused what.
#[derive(Default, Debug)]
struct Gathered {
    self_mask: BTreeMap<u32, usize>,
    mask_key: BTreeMap<u32, usize>,
    refused_check: Vec<(u32, String)>,
    refused_unmask: Vec<(u32, String)>,
}

impl Gathered {
    /// Whether the server can strip every mask from the victim's input:
    /// it needs t shares of the victim's self-mask seed, and for each
    /// partner the victim masked with, t shares of that partner's or the
    /// victim's mask key. Fewer than t Shamir shares reveal nothing.
    fn can_unmask(&self, t: u32, victim: u32, partners: &[u32]) -> bool {
        let enough =
            |map: &BTreeMap<u32, usize>, m: u32| map.get(&m).copied().unwrap_or(0) >= t as usize;
        enough(&self.self_mask, victim)
            && partners
                .iter()
                .all(|&p| enough(&self.mask_key, p) || enough(&self.mask_key, victim))
    }
}

/// A hostile server's round against victim 0: it routes to the victim only
/// the shares of `partners` (the fewest the victim accepts: t − 1 of
/// them), every share to everyone else, takes every masked input, then
/// shows member u the survivor set `shown[u]` and asks each member to
/// unmask with its set and every signature it gathered on that set.
fn hostile_round(fx: &Fixture, partners: &[u32], shown: &[Vec<u32>]) -> Gathered {
    let (_, encoded) = random_inputs(fx, 77);
    let (_, pairs) = run_to_masking(fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
    let mut masked = Vec::new();
    for (client, mut shares) in pairs {
        if shares.recipient == 0 {
            shares.shares.retain(|s| partners.contains(&s.sender));
        }
        let id = shares.recipient;
        let (client, _) = client.mask_input(&shares, &encoded[id as usize]).unwrap();
        masked.push(client);
    }
    let mut gathered = Gathered::default();
    let mut signatures: BTreeMap<Vec<u32>, Vec<ConsistencySignature>> = BTreeMap::new();
    let mut checked = Vec::new();
    for client in masked {
        let id = client.id();
        let set = shown[id as usize].clone();
        let request = ConsistencyRequest {
            survivors: set.clone(),
        };
        match client.check(&request, &fx.signing[id as usize]) {
            Ok((client, signature)) => {
                signatures.entry(set.clone()).or_default().push(signature);
                checked.push((client, set));
            }
            Err(err) => gathered.refused_check.push((id, err.to_string())),
        }
    }
    // The server pools every signature it holds, on any set, into each
    // request: only those on the member's own set can count.
    let every: Vec<ConsistencySignature> = signatures.values().flatten().cloned().collect();
    for (client, set) in checked {
        let id = client.id();
        let request = UnmaskRequest {
            survivors: set,
            signatures: every.clone(),
        };
        match client.unmask(&request) {
            Ok(response) => {
                for share in &response.self_mask_shares {
                    *gathered.self_mask.entry(share.owner).or_default() += 1;
                }
                for share in &response.mask_key_shares {
                    *gathered.mask_key.entry(share.owner).or_default() += 1;
                }
            }
            Err(err) => gathered.refused_unmask.push((id, err.to_string())),
        }
    }
    gathered
}

/// The attack, message for message, at n = 5: the victim gets only
/// the shares of 1 and 2; 3 and 4 are told {1, 2} dropped, 1 is told {2}
/// dropped, 2 is told {1} dropped, the victim that everyone survived.
#[test]
fn the_split_view_attack_at_five_members_gets_no_share_out() {
    for t in [3u32, 4] {
        let fx = fixture(5, t, 6);
        let partners: Vec<u32> = (1..t).collect();
        let shown = vec![
            vec![0, 1, 2],
            vec![0, 1, 3, 4],
            vec![0, 2, 3, 4],
            vec![0, 3, 4],
            vec![0, 3, 4],
        ];
        let gathered = hostile_round(&fx, &partners, &shown);
        assert!(
            !gathered.can_unmask(t, 0, &partners),
            "t = {t}: the server can unmask the victim: {gathered:?}"
        );
        // No set gathered t signatures: every member that signed refuses
        // to reveal anything.
        assert!(
            gathered.self_mask.is_empty() && gathered.mask_key.is_empty(),
            "t = {t}: shares left: {gathered:?}"
        );
        assert!(
            gathered
                .refused_unmask
                .iter()
                .all(|(_, why)| why.contains("valid signatures on the survivor set")),
            "{gathered:?}"
        );
        if t == 4 {
            // With t = 4 a set of three survivors is refused outright.
            assert!(gathered.refused_check.len() >= 3, "{gathered:?}");
        }
    }
}

/// Every way a hostile server can show survivor sets to the members of
/// rosters of 5 and 7: one set for everyone (every set of at least t
/// members that holds the victim), and a few hundred random splits into
/// different sets per member. The victim's input never comes out.
#[test]
fn no_split_of_survivor_sets_unmasks_the_victim_at_five_and_seven_members() {
    let mut rng = ChaCha20Rng::seed_from_u64(2017);
    for (n, t) in [(5u32, 3u32), (5, 4), (7, 4), (7, 5)] {
        let fx = fixture(n, t, 6);
        let partners: Vec<u32> = (1..t).collect();
        let sets: Vec<Vec<u32>> = (0u32..1 << n)
            .filter(|mask| mask & 1 == 1 && mask.count_ones() >= t)
            .map(|mask| (0..n).filter(|i| mask >> i & 1 == 1).collect())
            .collect();
        let mut answered = 0;
        for set in &sets {
            let gathered = hostile_round(&fx, &partners, &vec![set.clone(); n as usize]);
            assert!(
                !gathered.can_unmask(t, 0, &partners),
                "n = {n}, t = {t}, everyone shown {set:?}: {gathered:?}"
            );
            answered += usize::from(!gathered.self_mask.is_empty());
        }
        // The control: some single sets are answered (the protocol works,
        // and the counting sees shares when they come).
        assert!(answered > 0, "n = {n}, t = {t}: no set was ever answered");
        for _ in 0..60 {
            let shown: Vec<Vec<u32>> = (0..n)
                .map(|_| sets[rng.random_range(0..sets.len())].clone())
                .collect();
            let gathered = hostile_round(&fx, &partners, &shown);
            assert!(
                !gathered.can_unmask(t, 0, &partners),
                "n = {n}, t = {t}, shown {shown:?}: {gathered:?}"
            );
        }
    }
}

/// The counting is not vacuous: a member that skips the signature check
/// (answers any request for any set) lets the attack through. Its
/// shares are simulated from an honest run in which each member is asked
/// with the set the attack shows it and every signature is on that set.
#[test]
fn without_the_signature_check_the_split_view_attack_would_unmask_the_victim() {
    let (n, t) = (5u32, 3u32);
    let partners = vec![1u32, 2];
    let shown = [
        vec![0, 1, 2],
        vec![0, 1, 3, 4],
        vec![0, 2, 3, 4],
        vec![0, 3, 4],
        vec![0, 3, 4],
    ];
    // What each member reveals for its set once it is satisfied: shares of
    // b for its survivors and of s_sk for those it saw but are not in it.
    let mut gathered = Gathered::default();
    for (id, set) in shown.iter().enumerate() {
        let seen: Vec<u32> = if id == 0 {
            vec![0, 1, 2]
        } else {
            (0..n).collect()
        };
        for &owner in set {
            *gathered.self_mask.entry(owner).or_default() += 1;
        }
        for owner in seen.iter().filter(|m| !set.contains(m)) {
            *gathered.mask_key.entry(*owner).or_default() += 1;
        }
    }
    assert!(gathered.can_unmask(t, 0, &partners), "{gathered:?}");
}

/// A signature made for another round does not count: a request carrying
/// signatures of an earlier session is refused.
#[test]
fn signatures_from_another_session_do_not_count() {
    let fx = fixture(4, 3, 4);
    let (_, encoded) = random_inputs(&fx, 3);
    let run = |fx: &Fixture| {
        let (server, pairs) =
            run_to_masking(fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
        let mut server = server;
        let mut masked = Vec::new();
        for (client, shares) in pairs {
            let id = shares.recipient;
            let (client, message) = client.mask_input(&shares, &encoded[id as usize]).unwrap();
            server.receive(message).unwrap();
            masked.push(client);
        }
        let (server, check) = server.finish().unwrap();
        (server, masked, check)
    };
    // Two sessions with the same roster keys: rounds 1 and 9.
    let (_, old_masked, old_check) = run(&fx);
    let mut old_signatures = Vec::new();
    for client in old_masked {
        let id = client.id() as usize;
        let (_, signature) = client.check(&old_check, &fx.signing[id]).unwrap();
        old_signatures.push(signature);
    }
    let mut config = fx.params.config().clone();
    config.round = 9;
    let new_fx = Fixture {
        params: SecAggParams::new(config).unwrap(),
        signing: fx.signing,
    };
    let (_, new_masked, new_check) = run(&new_fx);
    assert_eq!(new_check.survivors, old_check.survivors);
    let mut refused = 0;
    for client in new_masked {
        let id = client.id() as usize;
        let (client, _) = client.check(&new_check, &new_fx.signing[id]).unwrap();
        let request = UnmaskRequest {
            survivors: new_check.survivors.clone(),
            signatures: old_signatures.clone(),
        };
        let err = client.unmask(&request).unwrap_err();
        assert!(
            matches!(
                err,
                SecAggError::TooFewSignatures {
                    got: 0,
                    threshold: 3
                }
            ),
            "{err}"
        );
        refused += 1;
    }
    assert_eq!(refused, 4);
}

// ----------------------------------------------------------- 4. overflow

#[test]
fn values_outside_the_bound_are_refused_naming_index_and_bound() {
    let fx = fixture(5, 3, 4);
    let fp = fx.params.fixed_point();
    let bound = fp.value_bound(5);
    assert!((bound - (i64::MAX / 5) as f64 / f64::from(1u32 << 24)).abs() < 1.0);
    assert!(
        fx.params
            .encode_input(&[0.0, bound * 0.999, -bound * 0.999, 1.0])
            .is_ok()
    );
    let err = fx
        .params
        .encode_input(&[0.0, 1.0, -bound * 1.001, 1.0])
        .unwrap_err();
    match &err {
        SecAggError::OutOfRange {
            index,
            bound: b,
            members,
            ..
        } => {
            assert_eq!((*index, *members), (2, 5));
            assert_eq!(*b, bound);
        }
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("index 2") && text.contains(&format!("{bound}")),
        "{text}"
    );
    assert!(matches!(
        fx.params.encode_input(&[0.0, 0.0, 0.0]),
        Err(SecAggError::InputLength {
            expected: 4,
            got: 3
        })
    ));
    // The largest values five members may send still sum without wrapping.
    let top = vec![bound * 0.999_999; 4];
    let inputs: Vec<_> = (0..5)
        .map(|_| fx.params.encode_input(&top).unwrap())
        .collect();
    let sum = fp.decode(&ring_sum(&inputs, 4));
    assert!(
        sum.iter().all(|s| (s - 5.0 * top[0]).abs() / s < 1e-9),
        "{sum:?}"
    );
}

// ------------------------------------ 5. signatures, keys and routing

#[test]
fn tampered_signatures_are_refused_by_the_server() {
    let fx = fixture(3, 2, 4);
    let mut server = Server::new(fx.params.clone());
    let (_, mut message) = Client::new(fx.params.clone(), 1)
        .unwrap()
        .advertise_keys(&fx.signing[1]);
    message.signature[10] ^= 1;
    let err = server.receive(message).unwrap_err();
    assert!(
        matches!(err, SecAggError::BadSignature { member: 1 }),
        "{err}"
    );
    // Signed by another member's key.
    let (_, message) = Client::new(fx.params.clone(), 1)
        .unwrap()
        .advertise_keys(&fx.signing[0]);
    assert!(matches!(
        server.receive(message),
        Err(SecAggError::BadSignature { member: 1 })
    ));
    // Signed for another round.
    let other = fixture_with(3, 2, 4, 2);
    let (_, message) = Client::new(other.params.clone(), 1)
        .unwrap()
        .advertise_keys(&fx.signing[1]);
    assert!(matches!(
        server.receive(message),
        Err(SecAggError::BadSignature { member: 1 })
    ));
    // Out of range, and the genuine message once only.
    let (_, mut message) = Client::new(fx.params.clone(), 1)
        .unwrap()
        .advertise_keys(&fx.signing[1]);
    let genuine = message.clone();
    message.sender = 7;
    assert!(matches!(
        server.receive(message),
        Err(SecAggError::UnknownMember { member: 7, .. })
    ));
    server.receive(genuine.clone()).unwrap();
    assert!(matches!(
        server.receive(genuine),
        Err(SecAggError::Duplicate { member: 1, .. })
    ));
}

/// Members 0..n advertise; returns their states and the genuine key list.
fn advertise_all(fx: &Fixture) -> (Vec<medfed_secure::secagg::ClientAdvertised>, KeyList) {
    let mut server = Server::new(fx.params.clone());
    let mut clients = Vec::new();
    for (id, key) in (0..).zip(&fx.signing) {
        let (client, message) = Client::new(fx.params.clone(), id)
            .unwrap()
            .advertise_keys(key);
        server.receive(message).unwrap();
        clients.push(client);
    }
    let (_, list) = server.finish().unwrap();
    (clients, list)
}

#[test]
fn substituted_public_keys_are_refused_by_the_members() {
    let fx = fixture(4, 3, 4);
    let (clients, list) = advertise_all(&fx);
    let [a0, a1, a2, a3]: [_; 4] = clients.try_into().ok().unwrap();
    // A server swaps in another key for member 2, keeping its signature...
    let mut swapped = list.clone();
    swapped.keys[2].mask_key = swapped.keys[3].cipher_key;
    let err = a0.share_keys(&swapped).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, SecAggError::BadSignature { member: 2 }),
        "{err}"
    );
    // ...or signs keys of its own with an Ed25519 key that is not member 2's.
    let mut resigned = list.clone();
    let (_, forged) = Client::new(fx.params.clone(), 2)
        .unwrap()
        .advertise_keys(&ed25519_key());
    resigned.keys[2] = forged;
    let err = a1.share_keys(&resigned).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, SecAggError::BadSignature { member: 2 }),
        "{err}"
    );
    // Member 2 is shown another key in place of its own.
    let mut own = list.clone();
    own.keys[2].cipher_key = list.keys[1].mask_key;
    let err = a2.share_keys(&own).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, SecAggError::OwnKeysReplaced { member: 2 }),
        "{err}"
    );
    // Member 3 is left out of the list.
    let mut without_me = list.clone();
    without_me.keys.remove(3);
    let err = a3.share_keys(&without_me).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, SecAggError::UnexpectedMember { member: 3, .. }),
        "{err}"
    );

    let (clients, list) = advertise_all(&fx);
    let [b0, b1, b2, b3]: [_; 4] = clients.try_into().ok().unwrap();
    let mut twice = list.clone();
    twice.keys[3] = twice.keys[1].clone();
    let err = b0.share_keys(&twice).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, SecAggError::Duplicate { member: 1, .. }),
        "{err}"
    );
    let mut short = list.clone();
    short.keys.truncate(2);
    let err = b1.share_keys(&short).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::TooFewMembers {
                got: 2,
                threshold: 3,
                ..
            }
        ),
        "{err}"
    );
    // A key list from another round is refused too.
    let other = fixture_with(4, 3, 4, 2);
    let (_, mut stale) = advertise_all(&other);
    stale.keys[2] = list.keys[2].clone();
    let err = b2.share_keys(&stale).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, SecAggError::BadSignature { member: 0 }),
        "{err}"
    );
    // The genuine list is accepted, with one share for each other member.
    let (_, message) = b3.share_keys(&list).unwrap();
    assert_eq!(message.shares.len(), 3);
}

#[test]
fn a_ciphertext_for_the_wrong_pair_is_refused() {
    let fx = fixture(4, 3, 4);
    let (_, encoded) = random_inputs(&fx, 7);
    let (_, pairs) = run_to_masking(&fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
    let mut pairs: BTreeMap<u32, _> = pairs
        .into_iter()
        .map(|(c, r)| (r.recipient, (c, r)))
        .collect();
    // What member 1 encrypted for member 3, routed to member 0 as if from 1.
    let for_3_from_1 = pairs[&3]
        .1
        .shares
        .iter()
        .find(|s| s.sender == 1)
        .unwrap()
        .ciphertext
        .clone();
    let (client0, mut routed0) = pairs.remove(&0).unwrap();
    let slot = routed0.shares.iter_mut().find(|s| s.sender == 1).unwrap();
    slot.ciphertext = for_3_from_1;
    let err = client0
        .mask_input(&routed0, &encoded[0])
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::DecryptionFailed {
                sender: 1,
                recipient: 0
            }
        ),
        "{err}"
    );

    // What member 2 sent member 1, relabelled as coming from member 3.
    let (client1, mut routed1) = pairs.remove(&1).unwrap();
    let from_2 = routed1.shares.iter().position(|s| s.sender == 2).unwrap();
    let from_3 = routed1.shares.iter().position(|s| s.sender == 3).unwrap();
    routed1.shares[from_3].ciphertext = routed1.shares[from_2].ciphertext.clone();
    let err = client1
        .mask_input(&routed1, &encoded[1])
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::DecryptionFailed {
                sender: 3,
                recipient: 1
            }
        ),
        "{err}"
    );

    // A flipped bit, and shares handed to the wrong member.
    let (client2, mut routed2) = pairs.remove(&2).unwrap();
    let for_2 = routed2.clone();
    routed2.shares[0].ciphertext[5] ^= 0x80;
    let sender = routed2.shares[0].sender;
    let err = client2
        .mask_input(&routed2, &encoded[2])
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, SecAggError::DecryptionFailed { sender: s, recipient: 2 } if s == sender),
        "{err}"
    );
    let (client3, _) = pairs.remove(&3).unwrap();
    let err = client3
        .mask_input(&for_2, &encoded[3])
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::Misdelivered {
                member: 3,
                intended: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_server_refuses_malformed_and_misplaced_messages() {
    let fx = fixture(4, 3, 4);
    let (_, encoded) = random_inputs(&fx, 8);
    let (clients, list) = advertise_all(&fx);
    let mut server = {
        let mut server = Server::new(fx.params.clone());
        for entry in &list.keys {
            server.receive(entry.clone()).unwrap();
        }
        server.finish().unwrap().0
    };
    let mut shared = Vec::new();
    for client in clients {
        let (client, message) = client.share_keys(&list).unwrap();
        let sender = message.sender;
        let mut truncated = message.clone();
        truncated.shares[0].ciphertext.pop();
        let err = server.receive(truncated).unwrap_err();
        assert!(
            matches!(err, SecAggError::WrongLength { member: s, .. } if s == sender),
            "{err}"
        );
        let mut missing = message.clone();
        missing.shares.pop();
        let err = server.receive(missing).unwrap_err();
        assert!(
            err.to_string().contains("sent no share for member"),
            "{err}"
        );
        let mut to_self = message.clone();
        to_self.shares[0].recipient = sender;
        assert!(matches!(
            server.receive(to_self),
            Err(SecAggError::UnexpectedMember { .. })
        ));
        server.receive(message).unwrap();
        shared.push(client);
    }
    let (mut server, routed) = server.finish().unwrap();
    let mut masked = Vec::new();
    for (client, shares) in shared.into_iter().zip(&routed) {
        let (client, message) = client
            .mask_input(shares, &encoded[shares.recipient as usize])
            .unwrap();
        let mut short = message.clone();
        short.values.pop();
        let err = server.receive(short).unwrap_err();
        assert!(
            err.to_string()
                .contains("masked vector of 3 values, expected 4 values"),
            "{err}"
        );
        server.receive(message.clone()).unwrap();
        assert!(matches!(
            server.receive(message),
            Err(SecAggError::Duplicate { .. })
        ));
        masked.push(client);
    }
    let (mut server, check) = server.finish().unwrap();
    let mut checked = Vec::new();
    for client in masked {
        let id = client.id() as usize;
        let (client, signature) = client.check(&check, &fx.signing[id]).unwrap();
        // A signature made with another member's key names its sender and
        // is not counted; the genuine one is, once.
        let mut forged = signature.clone();
        forged.signature = client_signature_by(&fx, 0);
        {
            assert!(matches!(
                server.receive(forged),
                Err(SecAggError::BadConsistencySignature { member }) if member == client.id()
            ));
        }
        server.receive(signature.clone()).unwrap();
        assert!(matches!(
            server.receive(signature),
            Err(SecAggError::Duplicate { .. })
        ));
        checked.push(client);
    }
    let (mut server, request) = server.finish().unwrap();
    let responses: Vec<_> = checked
        .into_iter()
        .map(|c| c.unmask(&request).unwrap())
        .collect();
    // A share copied from another member sits at the wrong point.
    let mut copied = responses[0].clone();
    copied.self_mask_shares[1].share = responses[1].self_mask_shares[1].share;
    let err = server.receive(copied).unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::BadShare {
                member: 0,
                stage: Stage::Unmasking,
                ..
            }
        ),
        "{err}"
    );
    // A mask-key share nobody asked for: every member survived.
    let mut extra = responses[1].clone();
    extra
        .mask_key_shares
        .push(extra.self_mask_shares[0].clone());
    assert!(matches!(
        server.receive(extra),
        Err(SecAggError::BadShare { member: 1, .. })
    ));
    for response in responses {
        server.receive(response).unwrap();
    }
    assert_eq!(server.finish().unwrap().sum, ring_sum(&encoded, 4));
}

// ------------------------------------------------------------ 6. property

/// Picks the step each vanishing member stops at.
fn stage_of(code: u8) -> Stage {
    match code % 5 {
        0 => Stage::AdvertiseKeys,
        1 => Stage::ShareKeys,
        2 => Stage::MaskedInput,
        3 => Stage::ConsistencyCheck,
        _ => Stage::Unmasking,
    }
}

/// n in 3..=8, t in (n/2, n], up to n - t members that vanish (each at a
/// step picked by a code), and a seed for the inputs.
fn dropout_case() -> impl Strategy<Value = (u32, u32, Vec<u32>, Vec<u8>, u64)> {
    (3u32..=8)
        .prop_flat_map(|n| (Just(n), n / 2 + 1..=n))
        .prop_flat_map(|(n, t)| {
            let ids =
                proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=(n - t) as usize);
            let gone = ids.prop_flat_map(|ids| {
                let len = ids.len();
                (Just(ids), proptest::collection::vec(any::<u8>(), len))
            });
            (Just(n), Just(t), gone, any::<u64>())
        })
        .prop_map(|(n, t, (ids, codes), seed)| (n, t, ids, codes, seed))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn any_dropout_within_the_threshold_gives_the_plain_sum(
        (n, t, ids, codes, seed) in dropout_case()
    ) {
        let fx = fixture(n, t, 5);
        let (_, encoded) = random_inputs(&fx, seed);
        let gone: BTreeMap<u32, Stage> =
            ids.iter().zip(&codes).map(|(&id, &code)| (id, stage_of(code))).collect();
        let aggregate = run_round(&fx, &encoded, &gone, Server::new(fx.params.clone())).unwrap();
        // Members that sent their masked input are in the sum, whether or not
        // they signed the survivor set or answered the unmasking request.
        let kept: Vec<u32> = (0..n)
            .filter(|id| {
                gone.get(id).is_none_or(|stage| {
                    matches!(stage, Stage::ConsistencyCheck | Stage::Unmasking)
                })
            })
            .collect();
        prop_assert_eq!(&aggregate.contributors, &kept);
        prop_assert_eq!(aggregate.sum, ring_sum(kept.iter().map(|&i| &encoded[i as usize]), 5));
    }
}

// ------------------------------------------------------------ measurement

/// The compute of one whole round, all parties in one thread, no network.
/// Run by hand:
/// `cargo test --release -p medfed-secure --test secagg -- --ignored --nocapture`
#[test]
#[ignore = "measurement, run by hand"]
fn measure_round_compute() {
    for n in [4u32, 20, 100] {
        for len in [31usize, 10_000] {
            let t = n * 2 / 3 + 1;
            let fx = fixture(n, t, len);
            let (_, encoded) = random_inputs(&fx, 9);
            for (label, gone) in [
                ("no dropout", BTreeMap::new()),
                ("1 dropped before input", vanish(&[(0, Stage::MaskedInput)])),
            ] {
                let mut server_time = Duration::default();
                let server = Server::new(fx.params.clone());
                let start = Instant::now();
                let aggregate =
                    run_round_timed(&fx, &encoded, &gone, server, &mut server_time).unwrap();
                let total = start.elapsed().as_secs_f64() * 1e3;
                let server_ms = server_time.as_secs_f64() * 1e3;
                assert_eq!(aggregate.contributors.len(), n as usize - gone.len());
                println!(
                    "n = {n:3}, t = {t:2}, {len:5} values, {label:22}: {total:8.1} ms in all, \
                     server {server_ms:7.1} ms, members {:6.2} ms each",
                    (total - server_ms) / f64::from(n)
                );
            }
        }
    }
}
