//! The workloads' pure parts: step rules, placement and reports.

use super::*;
use crate::ledger::{Ledger, Topology};
use crate::usage::Usage;

fn step(ledger: &Ledger) -> PhaseReport {
    PhaseReport {
        name: "step".into(),
        send_path: SendPath::Rest,
        target_rate: 10.0,
        duration_seconds: 1.0,
        tally: ledger.summarize(),
        offered_rate: 10.0,
        acked_rate: 10.0,
        delivery_rate: 10.0,
        max_send_lag_ms: 0.0,
        aborted: None,
        drain_seconds: 0.0,
        reconnects: 0,
        resent: 0,
        reposts: None,
        listen_overflows: None,
        machine_stall_ms: Vec::new(),
        server: None,
        loadgen: Usage::default(),
        machine_busy_percent: 0.0,
    }
}

#[test]
fn every_pair_spans_two_nodes_and_the_nodes_share_the_users() {
    for nodes in 2..=6 {
        let mut load = vec![0; nodes];
        for pair in 0..300u32 {
            let first = Placement::Pairs.node(2 * pair, nodes);
            let second = Placement::Pairs.node(2 * pair + 1, nodes);
            assert_ne!(first, second, "pair {pair} on {nodes} nodes");
            load[first] += 1;
            load[second] += 1;
        }
        assert!(load.iter().all(|&users| users == 600 / nodes), "{load:?}");
    }
    // One node takes everyone.
    assert!((0..10).all(|user| Placement::Pairs.node(user, 1) == 0));
    assert_eq!(Placement::RoundRobin.node(7, 3), 1);
}

#[test]
fn a_step_passes_only_fast_and_complete() {
    let rule = StepRule {
        p99_limit: Duration::from_millis(100),
    };
    let ledger = Ledger::new(Topology::Pairs { users: 2 }, 4);
    for index in 0..4 {
        ledger.mark_sent(index);
        ledger.mark_acked(index, 1_000_000);
        let (sender, seq) = ledger.message(index);
        ledger.record_delivery(sender ^ 1, sender, seq, 5_000_000);
    }
    assert_eq!(rule.verdict(&step(&ledger)), None);

    let slow = Ledger::new(Topology::Pairs { users: 2 }, 1);
    slow.mark_sent(0);
    slow.mark_acked(0, 1_000_000);
    slow.record_delivery(1, 0, 0, 150_000_000);
    assert!(
        rule.verdict(&step(&slow))
            .is_some_and(|r| r.contains("p99"))
    );

    let lossy = Ledger::new(Topology::Pairs { users: 2 }, 1);
    lossy.mark_sent(0);
    lossy.mark_acked(0, 1_000_000);
    assert!(
        rule.verdict(&step(&lossy))
            .is_some_and(|r| r.contains("lost"))
    );
}

#[test]
fn a_w5_step_fails_on_a_duplicate_or_a_refused_second_post() {
    let rule = StepRule {
        p99_limit: Duration::from_millis(50),
    };
    let topology = Topology::Inbound {
        recipients: 2,
        externals: 2,
    };
    let ledger = Ledger::new(topology, 2);
    for index in 0..2 {
        ledger.mark_sent(index);
        ledger.mark_acked(index, 1_000_000);
        let (sender, seq) = ledger.message(index);
        for recipient in 0..2 {
            ledger.record_delivery(recipient, sender, seq, 5_000_000);
        }
    }
    let mut clean = step(&ledger);
    clean.reposts = Some(crate::webhook::RepostReport {
        posted: 1,
        accepted: 1,
        refused: Default::default(),
    });
    assert_eq!(rule.inbound_verdict(&clean), None);

    let mut refused = clean.clone();
    refused.reposts = Some(crate::webhook::RepostReport {
        posted: 1,
        accepted: 0,
        refused: [("http 500".to_owned(), 1)].into(),
    });
    assert!(
        rule.inbound_verdict(&refused)
            .is_some_and(|r| r.contains("posted again"))
    );

    ledger.record_delivery(1, 0, 0, 6_000_000);
    assert!(
        rule.inbound_verdict(&step(&ledger))
            .is_some_and(|r| r.contains("duplicated"))
    );
    // W2's rule alone lets a duplicate pass.
    assert_eq!(rule.verdict(&step(&ledger)), None);
}
