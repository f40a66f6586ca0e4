//! The human-readable tables printed at the end of a run, and the
//! machine-readable document written with `--json`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::scheduling::Scheduling;
use crate::traffic::PhaseReport;
use crate::workload::Outcome;

/// The whole result of one run, as written with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub workload: String,
    pub run: u64,
    pub base_url: String,
    /// The server's processes (one per node), whose CPU and memory are reported together.
    pub server_pids: Vec<u32>,
    /// The generator's own scheduling policy.
    pub scheduling: Scheduling,
    pub settings: serde_json::Value,
    #[serde(flatten)]
    pub outcome: Outcome,
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1e3)
}

fn phase_rows(phases: &[PhaseReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>9} {:>9} {:>6} {:>10} {:>6} {:>5} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7} {:>6}",
        "phase",
        "target/s",
        "sent",
        "acked",
        "failed",
        "delivered",
        "lost",
        "dup",
        "sent/s",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9ms",
        "max ms",
        "srv cpu",
        "srv MiB",
        "lg cpu",
        "mach%",
    );
    for phase in phases {
        let t = &phase.tally;
        let (server_cpu, server_rss) = phase.server.map_or(("-".to_owned(), "-".to_owned()), |u| {
            (
                format!("{:.0}%", u.cpu_percent),
                format!("{:.1}", u.rss_mib),
            )
        });
        let _ = writeln!(
            out,
            "{:<12} {:>8.0} {:>9} {:>9} {:>6} {:>10} {:>6} {:>5} {:>9.0} {:>9.0} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7} {:>6.0}",
            phase.name,
            phase.target_rate,
            t.sent,
            t.acked,
            t.failed + t.unanswered,
            t.delivered,
            t.lost,
            t.duplicated,
            phase.offered_rate,
            phase.delivery_rate,
            ms(t.latency.p50_us),
            ms(t.latency.p90_us),
            ms(t.latency.p99_us),
            ms(t.latency.p999_us),
            ms(t.latency.max_us),
            server_cpu,
            server_rss,
            format!("{:.0}%", phase.loadgen.cpu_percent),
            phase.machine_busy_percent,
        );
    }
    out
}

fn phase_notes(phases: &[PhaseReport]) -> String {
    let mut out = String::new();
    for phase in phases {
        let t = &phase.tally;
        let _ = writeln!(
            out,
            "{}: sent over {}; expected deliveries {}, echoes {}, delivered without ack {}, strays {}, reconnects {}, resent {}; \
             ack latency p50 {} / p99 {} / max {} ms; max send lag {:.1} ms; drained {:.2} s after the last due time; \
             acked {:.0}/s; generator {:.1} CPU s, {:.0} MiB",
            phase.name,
            phase.send_path.name(),
            t.expected,
            t.echoes,
            t.delivered_unacked,
            t.strays,
            phase.reconnects,
            phase.resent,
            ms(t.ack_latency.p50_us),
            ms(t.ack_latency.p99_us),
            ms(t.ack_latency.max_us),
            phase.max_send_lag_ms,
            phase.drain_seconds,
            phase.acked_rate,
            phase.loadgen.cpu_seconds,
            phase.loadgen.rss_mib,
        );
        if let Some(overflows) = phase.listen_overflows.filter(|&n| n > 0) {
            let _ = writeln!(
                out,
                "  {overflows} connection attempts dropped on a full listen queue (each costs its sender a 1 s SYN retry)"
            );
        }
        if !t.timeline.is_empty() {
            let row = |f: &dyn Fn(&crate::ledger::SecondReport) -> String| {
                t.timeline.iter().map(f).collect::<Vec<_>>().join(" ")
            };
            let _ = writeln!(
                out,
                "  by second, max delivery ms: {}",
                row(&|s| format!("{:.0}", s.max_ms))
            );
            let _ = writeln!(
                out,
                "  by second, max ack ms:      {}",
                row(&|s| format!("{:.0}", s.ack_max_ms))
            );
            let _ = writeln!(
                out,
                "  by second, deliveries >= 100 ms: {}",
                row(&|s| s.over_100ms.to_string())
            );
            if !phase.machine_stall_ms.is_empty() {
                let stalls: Vec<String> = phase
                    .machine_stall_ms
                    .iter()
                    .map(|ms| format!("{ms:.0}"))
                    .collect();
                let _ = writeln!(out, "  by second, machine stall ms:  {}", stalls.join(" "));
            }
        }
        if let Some(reposts) = &phase.reposts {
            let _ = writeln!(
                out,
                "  posted again with the same MessageSid: {}, answered 200: {}{}",
                reposts.posted,
                reposts.accepted,
                if reposts.refused.is_empty() {
                    String::new()
                } else {
                    format!(", refused: {:?}", reposts.refused)
                }
            );
        }
        if !t.errors.is_empty() {
            let _ = writeln!(out, "  send errors: {:?}", t.errors);
        }
        if let Some(reason) = &phase.aborted {
            let _ = writeln!(out, "  stopped early: {reason}");
        }
    }
    out
}

/// The text printed to stdout.
pub fn table(report: &RunReport) -> String {
    let mut out = String::new();
    let outcome = &report.outcome;
    let p = &outcome.provisioning;
    let _ = writeln!(
        out,
        "switchboard-loadgen {} against {} (run {}, generator scheduled {})",
        report.workload,
        report.base_url,
        report.run,
        report.scheduling.name()
    );
    let _ = writeln!(
        out,
        "users {} ({} imported in {:.1} s, signed in in {:.1} s), receivers {}, server sends ready: {}",
        p.users,
        p.imported,
        p.import_seconds,
        p.sign_in_seconds,
        outcome.receivers,
        outcome.server_sends_ready
    );
    if let Some(sms) = &outcome.sms {
        let _ = writeln!(
            out,
            "business number {} (id {}) on connection {} ({}), webhooks signed for {}; given to {} extensions, taken from {} in {:.1} s",
            sms.business_number,
            sms.number_id,
            sms.connection_id,
            if sms.connection_created {
                "added"
            } else {
                "found"
            },
            sms.webhook_url,
            sms.assigned,
            sms.unassigned,
            sms.seconds
        );
    }
    if !outcome.phases.is_empty() {
        out.push('\n');
        out.push_str(&phase_rows(&outcome.phases));
        out.push('\n');
        out.push_str(&phase_notes(&outcome.phases));
        let _ = writeln!(
            out,
            "latency: scheduled send time to first WebSocket delivery; cpu in % of one core (200% = both cores of a 2-core machine); mach% = all cores of the machine;\nmachine stall: the worst oversleep of a thread that only sleeps 1 ms at a time (the CPU was withheld from everyone)"
        );
    }
    if let Some(reason) = &outcome.stop_reason {
        let (name, unit) = match outcome.sms {
            Some(_) => ("W5", "webhooks/s"),
            None => ("W2", "msg/s"),
        };
        match outcome.best_rate {
            Some(rate) => {
                let accepted = outcome
                    .phases
                    .iter()
                    .rev()
                    .find(|p| p.target_rate == rate && outcome.sms.is_some())
                    .map(|p| {
                        format!(
                            ", accepted {:.0}/s, p99 {} ms",
                            p.acked_rate,
                            ms(p.tally.latency.p99_us)
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "\n{name} result: {rate:.0} {unit}{accepted} (stopped: {reason})"
                );
            }
            None => {
                let _ = writeln!(out, "\n{name} result: no step passed ({reason})");
            }
        }
    }
    if let Some(idle) = &outcome.idle {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "connections   opened {} of {} (failed {}), open-files limit {}",
            idle.opened, idle.target, idle.failed, idle.open_files_limit
        );
        let _ = writeln!(
            out,
            "setup         {:.1} s, {:.0} connections/s; server CPU {} , generator CPU {:.0}%",
            idle.setup_seconds,
            idle.setup_rate,
            idle.server_during_setup
                .map_or("-".to_owned(), |u| format!("{:.0}%", u.cpu_percent)),
            idle.loadgen_during_setup.cpu_percent
        );
        let _ = writeln!(
            out,
            "server RSS    {:.1} MiB -> {:.1} MiB, {:.1} KiB per connection",
            idle.server_rss_before_mib, idle.server_rss_after_mib, idle.server_kib_per_connection
        );
        let _ = writeln!(
            out,
            "generator RSS {:.1} MiB -> {:.1} MiB, {:.1} KiB per connection",
            idle.loadgen_rss_before_mib,
            idle.loadgen_rss_after_mib,
            idle.loadgen_kib_per_connection
        );
        let _ = writeln!(
            out,
            "held          closed by the server while held {}, answered ping afterwards {}",
            idle.closed_while_held, idle.answered_ping
        );
        for (reason, count) in &idle.errors {
            let _ = writeln!(out, "  connect error x{count}: {reason}");
        }
    }
    out
}
