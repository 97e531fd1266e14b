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
    ServerMasking, ServerUnmasking, ShareKeys, Stage, UnmaskRequest, UnmaskResponse,
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

/// A whole round. `vanish` says at which step a member stops; a member that
/// stops at `Unmasking` has sent its masked input but never answers.
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
    let (server, checked, request) = run_check_timed(fx, vanish, server, masked, server_time)?;
    let request = wire(&request, UnmaskRequest::to_bytes, UnmaskRequest::from_bytes);
    let mut server = server;
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

/// Closes round 2 and runs the consistency check: every masked member
/// signs the survivor set unless `vanish` stops it at `ConsistencyCheck`.
fn run_check_timed(
    fx: &Fixture,
    vanish: &BTreeMap<u32, Stage>,
    server: ServerMasking,
    masked: Vec<ClientMasked>,
    server_time: &mut Duration,
) -> Result<(ServerUnmasking, Vec<ClientChecked>, UnmaskRequest), SecAggError> {
    let (mut server, check) = timed(server_time, || server.finish())?;
    let check = wire(
        &check,
        ConsistencyRequest::to_bytes,
        ConsistencyRequest::from_bytes,
    );
    let mut checked = Vec::new();
    for client in masked {
        let id = client.id();
        if vanish.get(&id) == Some(&Stage::ConsistencyCheck) {
            continue;
        }
        if !check.survivors.contains(&id) {
            continue;
        }
        let (client, signature) = client.check(&check, &fx.signing[id as usize])?;
        let signature = wire(
            &signature,
            ConsistencySignature::to_bytes,
            ConsistencySignature::from_bytes,
        );
        timed(server_time, || server.receive(signature))?;
        checked.push(client);
    }
    let (server, request) = timed(server_time, || server.finish())?;
    Ok((server, checked, request))
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
    let (mut server, check) = server.finish().unwrap();
    assert_eq!(check.survivors, vec![0, 1, 3, 4]);

    // The server also shows one member a survivor set with the late member
    // in it: that member signs it (it holds the late member's shares), but
    // it cannot gather t signatures on that set, so it gets nothing.
    let greedy = ConsistencyRequest {
        survivors: vec![0, 1, 2, 3, 4],
    };
    // Each state can answer once, so replay this on a fresh round.
    {
        let (_, pairs) =
            run_to_masking(&fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
        let (client, shares) = pairs.into_iter().next().unwrap();
        let (client, _) = client.mask_input(&shares, &encoded[0]).unwrap();
        let (client, signature) = client.check(&greedy, &fx.signing[0]).unwrap();
        let err = client
            .unmask(&UnmaskRequest {
                survivors: greedy.survivors.clone(),
                signatures: vec![signature.clone(), signature],
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                SecAggError::TooFewSignatures {
                    got: 1,
                    threshold: 3
                }
            ),
            "{err}"
        );
    }

    let mut checked = Vec::new();
    for client in masked {
        let id = client.id();
        let (client, signature) = client.check(&check, &fx.signing[id as usize]).unwrap();
        server.receive(signature).unwrap();
        checked.push(client);
    }
    let (mut server, request) = server.finish().unwrap();
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

#[test]
fn a_server_splitting_the_survivor_set_gets_no_shares_at_all() {
    // The server tells members 0 and 1 "2 survived" and members 3 and 4
    // "2 dropped". Each side signs its own set, neither set gathers t = 3
    // signatures, and no member reveals anything.
    let fx = fixture(5, 3, 4);
    let (_, encoded) = random_inputs(&fx, 6);
    let (_, pairs) = run_to_masking(&fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
    let says_survived = ConsistencyRequest {
        survivors: vec![0, 1, 2, 3, 4],
    };
    let says_dropped = ConsistencyRequest {
        survivors: vec![0, 1, 3, 4],
    };
    let mut checked = Vec::new();
    let mut signatures = Vec::new();
    for (client, shares) in pairs {
        let id = shares.recipient;
        let (client, _) = client.mask_input(&shares, &encoded[id as usize]).unwrap();
        if id == 2 {
            continue;
        }
        let request = if id < 2 {
            &says_survived
        } else {
            &says_dropped
        };
        let (client, signature) = client.check(request, &fx.signing[id as usize]).unwrap();
        signatures.push(signature);
        checked.push((client, request.survivors.clone()));
    }
    for (client, survivors) in checked {
        // Every signature the server holds, whichever set it is on.
        let request = UnmaskRequest {
            survivors,
            signatures: signatures.clone(),
        };
        let err = client.unmask(&request).unwrap_err();
        assert!(
            matches!(
                err,
                SecAggError::TooFewSignatures {
                    got: 2,
                    threshold: 3
                }
            ),
            "{err}"
        );
    }
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
fn a_ciphertext_for_the_wrong_pair_is_a_complaint_not_an_abort() {
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
    let (client0, message) = client0.mask_input(&routed0, &encoded[0]).unwrap();
    assert_eq!(message.complaints, vec![1]);
    assert!(
        matches!(
            client0.complaints()[&1],
            SecAggError::DecryptionFailed {
                sender: 1,
                recipient: 0
            }
        ),
        "{}",
        client0.complaints()[&1]
    );

    // What member 2 sent member 1, relabelled as coming from member 3: a
    // view of {1, 2} is below t = 3 once member 3 is left out too, but with
    // only one complaint the member goes on with {1, 2, 0}.
    let (client1, mut routed1) = pairs.remove(&1).unwrap();
    let from_2 = routed1.shares.iter().position(|s| s.sender == 2).unwrap();
    let from_3 = routed1.shares.iter().position(|s| s.sender == 3).unwrap();
    routed1.shares[from_3].ciphertext = routed1.shares[from_2].ciphertext.clone();
    let (client1, message) = client1.mask_input(&routed1, &encoded[1]).unwrap();
    assert_eq!(message.complaints, vec![3]);
    assert!(matches!(
        client1.complaints()[&3],
        SecAggError::DecryptionFailed {
            sender: 3,
            recipient: 1
        }
    ));

    // Two flipped bits leave member 2 a view of {2, x}: below t, it stops.
    let (client2, mut routed2) = pairs.remove(&2).unwrap();
    let for_2 = routed2.clone();
    routed2.shares[0].ciphertext[5] ^= 0x80;
    routed2.shares[1].commitments.self_mask[0] ^= 1;
    let err = client2
        .mask_input(&routed2, &encoded[2])
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::TooFewMembers {
                stage: Stage::ShareKeys,
                got: 2,
                threshold: 3
            }
        ),
        "{err}"
    );
    // Shares handed to the wrong member are still an error: the server's.
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
        let id = client.id();
        let (client, signature) = client.check(&check, &fx.signing[id as usize]).unwrap();
        let mut forged = signature.clone();
        forged.signature[3] ^= 1;
        assert!(matches!(
            server.receive(forged),
            Err(SecAggError::BadConsistencySignature { member, .. }) if member == id
        ));
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
    let aggregate = server.finish().unwrap();
    assert_eq!(aggregate.sum, ring_sum(&encoded, 4));
    // Each altered signature named its sender, and the genuine one that
    // followed was counted.
    let named: Vec<(u32, Stage)> = aggregate
        .excluded()
        .iter()
        .map(|e| (e.member, e.stage))
        .collect();
    assert_eq!(
        named,
        (0..4)
            .map(|id| (id, Stage::ConsistencyCheck))
            .collect::<Vec<_>>()
    );
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
                gone.get(id)
                    .is_none_or(|stage| matches!(stage, Stage::ConsistencyCheck | Stage::Unmasking))
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

// --------------------------------------------- 7. a deviating coordinator

/// A hostile coordinator that keeps every message and routes, asks and
/// collects as it likes; the members are the real state machines.
struct Hostile {
    keys: KeyList,
    shares: BTreeMap<u32, ShareKeys>,
}

impl Hostile {
    /// The shares of `senders` encrypted for `recipient`, as a real
    /// server would route them.
    fn route(&self, recipient: u32, senders: &[u32]) -> RoutedShares {
        let shares = senders
            .iter()
            .map(|sender| {
                let sealed = self.shares[sender]
                    .shares
                    .iter()
                    .find(|s| s.recipient == recipient)
                    .unwrap();
                medfed_secure::secagg::RoutedShare {
                    sender: *sender,
                    ciphertext: sealed.ciphertext.clone(),
                    commitments: sealed.commitments,
                }
            })
            .collect();
        RoutedShares { recipient, shares }
    }
}

/// Rounds 0 and 1 with every member honest and present.
fn hostile_start(fx: &Fixture) -> (Hostile, BTreeMap<u32, ClientShared>) {
    let (clients, keys) = advertise_all(fx);
    let mut shares = BTreeMap::new();
    let mut shared = BTreeMap::new();
    for client in clients {
        let (client, message) = client.share_keys(&keys).unwrap();
        let id = message.sender;
        shares.insert(id, message);
        shared.insert(id, client);
    }
    (Hostile { keys, shares }, shared)
}

/// How each member answered the hostile server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Refused to mask (too few shares routed to it).
    RefusedToMask,
    /// Refused to sign the set it was shown.
    RefusedToSign,
    /// Signed, then refused the unmasking request.
    RefusedToUnmask,
    /// Revealed shares.
    Revealed,
}

/// The outcome of one attack: how each member answered, and whether the
/// victim's input came out.
struct Attack {
    answers: BTreeMap<u32, Answer>,
    /// What is left of y₀ after removing every mask the server can, and the
    /// masks it could not remove (`None` when the victim never masked).
    victim: Option<(Vec<u64>, Vec<String>)>,
    /// Whether the victim's self-mask seed could be rebuilt.
    victim_seed_rebuilt: bool,
}

/// Routes to victim 0 only the shares of `partners` (everyone else gets
/// all shares), shows member m the survivor set `shown(m)`, then asks
/// every member that signed to unmask its own set with every signature the
/// server holds, and pools all that comes back.
fn split_view_attack(
    fx: &Fixture,
    encoded: &[EncodedInput],
    partners: &[u32],
    shown: &dyn Fn(u32) -> Vec<u32>,
) -> Attack {
    let n = fx.params.members();
    let t = fx.params.threshold() as usize;
    let (hostile, shared) = hostile_start(fx);
    let mut answers = BTreeMap::new();
    let mut masked = BTreeMap::new();
    let mut inputs = BTreeMap::new();
    let mut views = BTreeMap::new();
    for (id, client) in shared {
        let senders: Vec<u32> = if id == 0 {
            partners.to_vec()
        } else {
            (0..n).filter(|&m| m != id).collect()
        };
        let routed = hostile.route(id, &senders);
        match client.mask_input(&routed, &encoded[id as usize]) {
            Ok((client, input)) => {
                assert!(input.complaints.is_empty());
                masked.insert(id, client);
                inputs.insert(id, input);
                let mut view = senders.clone();
                view.push(id);
                view.sort_unstable();
                views.insert(id, view);
            }
            Err(err) => {
                // Only the victim can be short of shares, and only when
                // fewer than t - 1 partners were routed to it.
                assert_eq!(id, 0);
                assert!(partners.len() + 1 < t);
                assert!(
                    matches!(
                        err,
                        SecAggError::TooFewMembers {
                            stage: Stage::ShareKeys,
                            ..
                        }
                    ),
                    "{err}"
                );
                answers.insert(id, Answer::RefusedToMask);
            }
        }
    }

    let mut checked = BTreeMap::new();
    let mut signatures = Vec::new();
    for (id, client) in masked {
        let set = shown(id);
        let view = &views[&id];
        let request = ConsistencyRequest {
            survivors: set.clone(),
        };
        match client.check(&request, &fx.signing[id as usize]) {
            Ok((client, signature)) => {
                assert!(set.iter().all(|m| view.contains(m)) && set.contains(&id));
                assert!(set.len() >= t);
                signatures.push(signature);
                checked.insert(id, (client, set));
            }
            Err(err) => {
                // Refused exactly when the set is not one to sign.
                let outside = set.iter().any(|m| !view.contains(m)) || !set.contains(&id);
                if outside {
                    assert!(
                        matches!(err, SecAggError::InconsistentRequest { .. }),
                        "member {id}: {err}"
                    );
                } else {
                    assert!(set.len() < t);
                    assert!(
                        matches!(err, SecAggError::TooFewMembers { .. }),
                        "member {id}: {err}"
                    );
                }
                answers.insert(id, Answer::RefusedToSign);
            }
        }
    }

    // Who signed which set (each honest member signs one).
    let mut signers_of: BTreeMap<Vec<u32>, usize> = BTreeMap::new();
    for (_, set) in checked.values() {
        *signers_of.entry(set.clone()).or_default() += 1;
    }
    let mut responses = Vec::new();
    for (id, (client, set)) in checked {
        let request = UnmaskRequest {
            survivors: set.clone(),
            signatures: signatures.clone(),
        };
        match client.unmask(&request) {
            Ok(response) => {
                assert!(
                    signers_of[&set] >= t,
                    "member {id} answered too few signers"
                );
                responses.push(response);
                answers.insert(id, Answer::Revealed);
            }
            Err(err) => {
                assert!(signers_of[&set] < t, "member {id}: {err}");
                assert!(
                    matches!(err, SecAggError::TooFewSignatures { .. }),
                    "member {id}: {err}"
                );
                answers.insert(id, Answer::RefusedToUnmask);
            }
        }
    }

    let knowledge = medfed_secure::secagg::ServerKnowledge::from_received(
        fx.params.clone(),
        &hostile.keys.keys,
        responses,
    );
    let victim = inputs
        .get(&0)
        .map(|y0| knowledge.strip_all_masks(y0, &views[&0]).unwrap());
    Attack {
        answers,
        victim,
        victim_seed_rebuilt: knowledge.rebuild_self_mask_seed(0).is_ok(),
    }
}

/// The survivor sets a hostile server tries, for victim 0 with view
/// {0} ∪ `partners` on a roster of `n`.
/// The survivor set a hostile server shows each member.
type Shown = Box<dyn Fn(u32) -> Vec<u32>>;

fn attack_strategies(n: u32, partners: &[u32]) -> Vec<(&'static str, Shown)> {
    let view: Vec<u32> = std::iter::once(0).chain(partners.iter().copied()).collect();
    let others: Vec<u32> = (1..n).filter(|m| !partners.contains(m)).collect();
    let with = |extra: &[u32]| {
        let mut set: Vec<u32> = std::iter::once(0)
            .chain(others.iter().copied())
            .chain(extra.iter().copied())
            .collect();
        set.sort_unstable();
        set
    };
    let first = partners[0];
    let (v, o) = (view.clone(), others.clone());
    let issue = {
        let (v, o) = (view.clone(), others.clone());
        let sets: BTreeMap<u32, Vec<u32>> = (0..n)
            .map(|m| {
                let set = if m == 0 {
                    v.clone()
                } else if o.contains(&m) {
                    with(&[])
                } else {
                    with(&[m])
                };
                (m, set)
            })
            .collect();
        move |m: u32| sets[&m].clone()
    };
    let one_partner = {
        let v = view.clone();
        let o = others.clone();
        let sets: BTreeMap<u32, Vec<u32>> = (0..n)
            .map(|m| {
                let set = if m == 0 {
                    v.clone()
                } else if o.contains(&m) || m == first {
                    with(&[first])
                } else {
                    with(&[m])
                };
                (m, set)
            })
            .collect();
        move |m: u32| sets[&m].clone()
    };
    let without_partners = with(&[]);
    vec![
        (
            "one set without the partners, to all",
            Box::new(move |_| without_partners.clone()),
        ),
        (
            "the issue's split: others drop all partners, each partner drops the rest",
            Box::new(issue),
        ),
        (
            "others and the first partner drop the other partners",
            Box::new(one_partner),
        ),
        (
            "two worlds: the victim's view to its members, the rest to the others",
            Box::new(move |m| {
                if v.contains(&m) {
                    v.clone()
                } else {
                    let mut set = o.clone();
                    set.push(0);
                    set.sort_unstable();
                    set
                }
            }),
        ),
    ]
}

#[test]
fn a_server_routing_a_split_view_cannot_unmask_the_victim() {
    for (n, t) in [(5u32, 3u32), (5, 4), (7, 4), (7, 5)] {
        let fx = fixture(n, t, 16);
        let (_, encoded) = random_inputs(&fx, u64::from(n * 10 + t));
        let x0 = encoded[0].as_slice();
        // The issue's routing (only members 1 and 2 reach the victim), and
        // the widest split a member still masks with (t - 1 partners).
        let widest: Vec<u32> = (1..t).collect();
        for partners in [vec![1, 2], widest] {
            for (label, shown) in attack_strategies(n, &partners) {
                let case = format!("n = {n}, t = {t}, partners {partners:?}: {label}");
                let attack = split_view_attack(&fx, &encoded, &partners, &*shown);
                match &attack.victim {
                    None => assert_eq!(attack.answers[&0], Answer::RefusedToMask, "{case}"),
                    Some((left, masks)) => {
                        assert!(!masks.is_empty(), "{case}: every mask came off");
                        let near = left
                            .iter()
                            .zip(x0)
                            .filter(|(a, b)| (a.wrapping_sub(**b) as i64).unsigned_abs() <= 1 << 20)
                            .count();
                        assert_eq!(near, 0, "{case}: x₀ shows in {near} places");
                        // Whatever it got, never both halves: if the seed of
                        // the victim came out, a pairwise mask stays.
                        if attack.victim_seed_rebuilt {
                            assert!(
                                masks.iter().all(|m| m.contains("pairwise")),
                                "{case}: {masks:?}"
                            );
                        }
                    }
                }
                // Some honest member always refused at some step.
                assert!(
                    attack.answers.values().any(|a| *a != Answer::Revealed),
                    "{case}"
                );
            }
        }
    }
}

#[test]
fn in_the_two_worlds_split_the_victims_world_unmasks_only_its_own_view() {
    // n = 5, t = 3, victim 0 sees {0, 1, 2}: shown that set, 0, 1 and 2
    // sign it and reveal (b₀ comes out), but s_sk of 1 and 2 never does, so
    // the pairwise masks of 0 with 1 and 2 stay on y₀; members 3 and 4 sign
    // {0, 3, 4}, which has only their two signatures, and reveal nothing.
    let fx = fixture(5, 3, 16);
    let (_, encoded) = random_inputs(&fx, 77);
    let strategies = attack_strategies(5, &[1, 2]);
    let (_, shown) = strategies
        .iter()
        .find(|(label, _)| label.starts_with("two worlds"))
        .unwrap();
    let attack = split_view_attack(&fx, &encoded, &[1, 2], &**shown);
    use Answer::*;
    assert_eq!(
        attack.answers.values().cloned().collect::<Vec<_>>(),
        vec![
            Revealed,
            Revealed,
            Revealed,
            RefusedToUnmask,
            RefusedToUnmask
        ]
    );
    assert!(attack.victim_seed_rebuilt);
    let (_, masks) = attack.victim.unwrap();
    assert_eq!(
        masks,
        vec![
            "the pairwise mask of members 0 and 1".to_string(),
            "the pairwise mask of members 0 and 2".to_string()
        ]
    );
}

#[test]
fn up_to_n_minus_t_members_vanishing_at_any_stage_leave_the_exact_sum() {
    for t in [3u32, 4] {
        let fx = fixture(5, t, 9);
        let (_, encoded) = random_inputs(&fx, u64::from(t));
        for stage in [
            Stage::AdvertiseKeys,
            Stage::ShareKeys,
            Stage::MaskedInput,
            Stage::ConsistencyCheck,
            Stage::Unmasking,
        ] {
            let gone: BTreeMap<u32, Stage> = (0..5 - t).map(|id| (id * 2, stage)).collect();
            let aggregate =
                run_round(&fx, &encoded, &gone, Server::new(fx.params.clone())).unwrap();
            let in_sum = matches!(stage, Stage::ConsistencyCheck | Stage::Unmasking);
            let kept: Vec<u32> = (0..5)
                .filter(|id| in_sum || !gone.contains_key(id))
                .collect();
            assert_eq!(aggregate.contributors, kept, "t = {t}, {stage}");
            assert_eq!(
                aggregate.sum,
                ring_sum(kept.iter().map(|&i| &encoded[i as usize]), 9),
                "t = {t}, {stage}"
            );
            assert!(aggregate.excluded().is_empty());
        }
    }
}

/// Runs a round in which `tamper` may alter each member's shares before
/// the server routes them.
fn run_with_tampered_shares(
    fx: &Fixture,
    encoded: &[EncodedInput],
    tamper: impl Fn(&mut ShareKeys),
) -> Result<Aggregate, SecAggError> {
    let (clients, list) = advertise_all(fx);
    let mut server = {
        let mut server = Server::new(fx.params.clone());
        for entry in &list.keys {
            server.receive(entry.clone()).unwrap();
        }
        server.finish().unwrap().0
    };
    let mut shared = BTreeMap::new();
    for client in clients {
        let (client, mut message) = client.share_keys(&list)?;
        tamper(&mut message);
        shared.insert(message.sender, client);
        server.receive(message)?;
    }
    let (mut server, routed) = server.finish()?;
    let mut masked = Vec::new();
    for shares in routed {
        let client = shared.remove(&shares.recipient).unwrap();
        let (client, message) = client.mask_input(&shares, &encoded[shares.recipient as usize])?;
        server.receive(message)?;
        masked.push(client);
    }
    let (mut server, checked, request) = run_check_timed(
        fx,
        &BTreeMap::new(),
        server,
        masked,
        &mut Duration::default(),
    )?;
    for client in checked {
        server.receive(client.unmask(&request)?)?;
    }
    server.finish()
}

#[test]
fn a_member_sending_a_bad_share_is_named_and_the_rest_sum_exactly() {
    let fx = fixture(5, 3, 6);
    let (_, encoded) = random_inputs(&fx, 11);
    let rest = ring_sum([0usize, 1, 2, 3].iter().map(|&i| &encoded[i]), 6);
    // Member 4 sends member 1 a share that does not decrypt, or one whose
    // commitment is not the share's.
    for tamper in [
        (|s: &mut ShareKeys| s.shares[1].ciphertext[9] ^= 1) as fn(&mut ShareKeys),
        |s: &mut ShareKeys| s.shares[1].commitments.mask_key[0] ^= 1,
    ] {
        let aggregate = run_with_tampered_shares(&fx, &encoded, |message| {
            if message.sender == 4 {
                assert_eq!(message.shares[1].recipient, 1);
                tamper(message);
            }
        })
        .unwrap();
        assert_eq!(aggregate.contributors, vec![0, 1, 2, 3]);
        assert_eq!(aggregate.sum, rest);
        let excluded = aggregate.excluded();
        assert_eq!(excluded.len(), 1, "{excluded:?}");
        assert_eq!(excluded[0].member, 4);
        assert!(
            excluded[0].reason.contains("member(s) 1 refused"),
            "{}",
            excluded[0].reason
        );
    }
}

#[test]
fn a_revealed_share_that_breaks_its_commitment_is_set_aside_and_named() {
    let fx = fixture(5, 3, 6);
    let (_, encoded) = random_inputs(&fx, 12);
    let (mut server, pairs) =
        run_to_masking(&fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
    let mut masked = Vec::new();
    for (client, shares) in pairs {
        let (client, message) = client
            .mask_input(&shares, &encoded[shares.recipient as usize])
            .unwrap();
        server.receive(message).unwrap();
        masked.push(client);
    }
    let (mut server, checked, request) = run_check_timed(
        &fx,
        &BTreeMap::new(),
        server,
        masked,
        &mut Duration::default(),
    )
    .unwrap();
    for client in checked {
        let id = client.id();
        let mut response = client.unmask(&request).unwrap();
        if id == 2 {
            // Same point, other bytes: only the commitment tells.
            response.self_mask_shares[0].share[7] ^= 1;
            let err = server.receive(response).unwrap_err();
            assert!(
                matches!(
                    err,
                    SecAggError::CommitmentMismatch {
                        stage: Stage::Unmasking,
                        owner: 0,
                        holder: 2,
                        ..
                    }
                ),
                "{err}"
            );
        } else {
            server.receive(response).unwrap();
        }
    }
    let aggregate = server.finish().unwrap();
    assert_eq!(aggregate.sum, ring_sum(&encoded, 6));
    assert_eq!(aggregate.excluded().len(), 1);
    assert_eq!(
        (
            aggregate.excluded()[0].member,
            aggregate.excluded()[0].stage
        ),
        (2, Stage::Unmasking)
    );
}

#[test]
fn signatures_from_another_session_or_on_another_set_are_refused() {
    let fx = fixture(5, 3, 4);
    let other = {
        // The same roster and keys, another round: another digest.
        let mut config = fx.params.config().clone();
        config.round += 1;
        SecAggParams::new(config).unwrap()
    };
    let (_, encoded) = random_inputs(&fx, 13);
    let (mut server, pairs) =
        run_to_masking(&fx, &BTreeMap::new(), Server::new(fx.params.clone())).unwrap();
    let mut masked = Vec::new();
    for (client, shares) in pairs {
        let (client, message) = client
            .mask_input(&shares, &encoded[shares.recipient as usize])
            .unwrap();
        server.receive(message).unwrap();
        masked.push(client);
    }
    let (mut server, check) = server.finish().unwrap();

    // Member 1's signature on the same set, made in the other session by
    // member 1 itself (same roster key, all members present there too).
    let stale = {
        let mut server = Server::new(other.clone());
        let mut advertised = Vec::new();
        for (id, key) in (0..).zip(&fx.signing) {
            let (client, message) = Client::new(other.clone(), id).unwrap().advertise_keys(key);
            server.receive(message).unwrap();
            advertised.push(client);
        }
        let (mut server, list) = server.finish().unwrap();
        let mut shared = BTreeMap::new();
        for client in advertised {
            let (client, message) = client.share_keys(&list).unwrap();
            shared.insert(message.sender, client);
            server.receive(message).unwrap();
        }
        let (_, routed) = server.finish().unwrap();
        let mine = routed.into_iter().find(|r| r.recipient == 1).unwrap();
        let client = shared.remove(&1).unwrap();
        let input = other.encode_input(&[0.0; 4]).unwrap();
        let (client, _) = client.mask_input(&mine, &input).unwrap();
        client.check(&check, &fx.signing[1]).unwrap().1
    };
    let err = server.receive(stale.clone()).unwrap_err();
    assert!(
        matches!(err, SecAggError::BadConsistencySignature { member: 1, .. }),
        "{err}"
    );

    let mut checked = Vec::new();
    let mut genuine = Vec::new();
    for client in masked {
        let id = client.id();
        let (client, signature) = client.check(&check, &fx.signing[id as usize]).unwrap();
        if id >= 2 {
            server.receive(signature.clone()).unwrap();
            genuine.push(signature);
        }
        checked.push(client);
    }
    // A member does not count the stale signature either: two genuine ones
    // and a stale one are below t = 3.
    let client0 = checked.into_iter().next().unwrap();
    let mut two_and_stale = genuine[..2].to_vec();
    two_and_stale.push(stale);
    let err = client0
        .unmask(&UnmaskRequest {
            survivors: check.survivors.clone(),
            signatures: two_and_stale,
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            SecAggError::TooFewSignatures {
                got: 2,
                threshold: 3
            }
        ),
        "{err}"
    );
    // The server still finishes with the three genuine signers.
    let (_, request) = server.finish().unwrap();
    assert_eq!(request.signatures.len(), 3);
}
