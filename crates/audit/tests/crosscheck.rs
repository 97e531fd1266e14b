//! Cross-checking a node's log against the coordinator's.

mod common;

use common::{COORDINATOR, Fault, Federation, NODE, TASK, lines, write_lines};
use medfed_audit::{DiscrepancyKind, Flow, cross_check};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[test]
fn consistent_logs_are_clean() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let report = cross_check(&f.node_log, &f.coordinator_log)?;
    assert!(report.is_clean(), "{:?}", report.discrepancies);
    assert_eq!(report.node, NODE);
    assert_eq!(report.coordinator, COORDINATOR);
    // join, statistics, update out; task, global-model, finished in. The
    // coordinator's exchanges with city-general are not compared.
    assert_eq!(report.matched, 6);
    assert_eq!(report.node_entries_skipped, 0);
    Ok(())
}

#[test]
fn a_message_the_coordinator_did_not_log_is_missing() -> Result {
    let f = Federation::new()?;
    f.run(Fault::CoordinatorDropsUpdate)?;
    let report = cross_check(&f.node_log, &f.coordinator_log)?;
    assert_eq!(report.discrepancies.len(), 1, "{:?}", report.discrepancies);
    let d = &report.discrepancies[0];
    assert_eq!(d.kind, DiscrepancyKind::MissingInCoordinatorLog);
    assert_eq!(d.flow, Flow::NodeToCoordinator);
    assert_eq!(
        (d.task.as_str(), d.round, d.message_kind.as_str()),
        (TASK, 1, "update")
    );
    assert!(d.node.is_some() && d.coordinator.is_none());
    Ok(())
}

#[test]
fn a_message_the_node_did_not_receive_is_missing() -> Result {
    let f = Federation::new()?;
    f.run(Fault::NodeMissesGlobalModel)?;
    let report = cross_check(&f.node_log, &f.coordinator_log)?;
    assert_eq!(report.discrepancies.len(), 1, "{:?}", report.discrepancies);
    let d = &report.discrepancies[0];
    assert_eq!(d.kind, DiscrepancyKind::MissingInNodeLog);
    assert_eq!(d.flow, Flow::CoordinatorToNode);
    assert_eq!((d.round, d.message_kind.as_str()), (1, "global-model"));
    Ok(())
}

#[test]
fn an_altered_message_is_reported_with_both_hashes() -> Result {
    let f = Federation::new()?;
    f.run(Fault::CoordinatorAltersUpdate)?;
    let report = cross_check(&f.node_log, &f.coordinator_log)?;
    assert_eq!(report.discrepancies.len(), 1, "{:?}", report.discrepancies);
    let d = &report.discrepancies[0];
    assert_eq!(d.kind, DiscrepancyKind::Altered);
    assert_eq!((d.round, d.message_kind.as_str()), (1, "update"));
    let (node, coordinator) = (
        d.node.as_ref().ok_or("node side")?,
        d.coordinator.as_ref().ok_or("coordinator side")?,
    );
    assert_ne!(node.sha256, coordinator.sha256);
    assert_eq!(
        node.sha256,
        medfed_audit::Digest::of(&common::update_bytes(1, 1.0))
    );
    Ok(())
}

#[test]
fn entries_cut_from_the_end_of_one_log_show_up() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.coordinator_log)?;
    all.pop(); // `finished` to st-marys
    write_lines(&f.coordinator_log, &all)?;
    let report = cross_check(&f.node_log, &f.coordinator_log)?;
    let kinds: Vec<_> = report
        .discrepancies
        .iter()
        .map(|d| (d.kind, d.message_kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(DiscrepancyKind::MissingInCoordinatorLog, "finished")]
    );
    Ok(())
}

#[test]
fn a_node_log_with_another_coordinator_name_is_skipped_not_matched() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    // Compare the node's log with itself: no entry has peer st-marys there.
    let report = cross_check(&f.node_log, &f.node_log)?;
    assert_eq!(report.matched, 0);
    assert!(report.node_entries_skipped > 0);
    Ok(())
}
