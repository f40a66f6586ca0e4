//! `switchboard-loadgen`: the project's load generator. It drives a running
//! Switchboard server over the real client protocol only — HTTP sign-in, the
//! administrator's CSV import, REST or WebSocket sends, WebSocket receives — and measures
//! the benchmark workloads W1–W5 of the design (delivery latency from the
//! scheduled send time, loss, duplicates, rates, and the CPU and memory of the
//! server and of itself). For W5 it also plays a carrier, posting signed
//! inbound webhooks. Of the workspace it uses only the carriers crate's
//! signature function (what a carrier computes; no server code), so it
//! measures the protocol as any client sees it.

mod api;
mod idle;
mod ledger;
mod provision;
mod report;
mod scheduling;
mod stamp;
mod traffic;
mod usage;
mod webhook;
mod workload;
mod ws;
mod wsend;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::api::Api;
use crate::idle::IdleOptions;
use crate::provision::{CarrierSetup, Directory};
use crate::report::RunReport;
use crate::scheduling::Scheduling;
use crate::stamp::Clock;
use crate::traffic::Limits;
use crate::usage::Process;
use crate::workload::{Context, Node, StepRule, W5};
use crate::ws::{Board, Endpoint};
use crate::wsend::SendPath;

/// mimalloc rather than the system allocator: less CPU per message on the
/// generator, which shares the machine with the server it measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard-loadgen",
    version,
    about = "Load generator for a Switchboard server (workloads W1-W5)",
    after_help = "Start the server with `switchboard serve --demo --demo-password PW`, then e.g.\n  switchboard-loadgen --admin-password PW w1 --users 20 --rate 100 --duration 3"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Args)]
struct Common {
    /// The server's base URL (plain HTTP). Repeat it, once per node, to spread
    /// the users over several nodes of one server: the first node provisions,
    /// and each pair of W1/W2 spans two nodes (see the README).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    base_url: Vec<String>,
    /// Organization slug to sign in to.
    #[arg(long, global = true, default_value = "demo")]
    organization: String,
    /// Extension number of an administrator (imports the users).
    #[arg(long, global = true, default_value = "101")]
    admin_extension: String,
    /// That administrator's password (the server's --demo-password).
    #[arg(long, global = true, env = "SWITCHBOARD_LOADGEN_ADMIN_PASSWORD")]
    admin_password: Option<String>,
    /// Extension number of the generator's first user; the others follow.
    #[arg(long, global = true, default_value_t = 2000)]
    first_extension: u32,
    /// Password given to imported users (and used to sign them in).
    #[arg(long, global = true, default_value = "loadgen-password")]
    user_password: String,
    /// Rows per CSV import request.
    #[arg(long, global = true, default_value_t = 500)]
    import_chunk: usize,
    /// Sign-ins in flight at once.
    #[arg(long, global = true, default_value_t = 8)]
    sign_in_concurrency: usize,
    /// The server's process id, for its CPU and memory; found from the port when omitted.
    /// Repeat it for several nodes: their CPU and memory are added up.
    #[arg(long, global = true)]
    server_pid: Vec<u32>,
    /// Also write the result as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Seconds to wait for deliveries after the last send was answered.
    #[arg(long, global = true, default_value_t = 5.0)]
    grace: f64,
    /// Most sends in flight at once (one pooled keep-alive connection each
    /// over REST; sent and not yet answered over the WebSocket).
    #[arg(long, global = true, default_value_t = 2000)]
    max_in_flight: usize,
    /// How messages are sent: REST requests, or `send` frames on each
    /// sender's own WebSocket (w1, w2, w4; w5 posts webhooks).
    #[arg(long, global = true, value_enum, default_value_t = SendPath::Rest)]
    send_over: SendPath,
    /// Keep-alive connections to open before sending (capped at one per user).
    #[arg(long, global = true, default_value_t = 1000)]
    warm_connections: usize,
    /// Runtime worker threads. One is enough for every workload here and,
    /// on a machine shared with the server, costs it the least CPU (fewer
    /// wake-ups between threads); the sending schedule has a thread of its own.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Stop a phase when sends leave this many seconds after they were due.
    #[arg(long, global = true, default_value_t = 10.0)]
    max_lag: f64,
    /// The generator's scheduling policy. Default: batch for w2 and w5, whose
    /// figure is the rate the server sustains (the generator's wake-ups
    /// then never preempt the server's threads), normal for the others,
    /// whose figure is latency alone (a frame is read the moment it lands).
    #[arg(long, global = true, value_enum)]
    scheduling: Option<Scheduling>,
}

#[derive(Subcommand)]
enum Workload {
    /// Users in pairs (direct chats) at a fixed aggregate rate.
    #[command(alias = "W1")]
    W1 {
        #[arg(long, default_value_t = 1000)]
        users: u32,
        /// Aggregate messages per second.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Seconds.
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
    },
    /// The W1 users with the rate stepped up; the result is the highest step
    /// with p99 under the limit and nothing lost.
    #[command(alias = "W2")]
    W2 {
        #[arg(long, default_value_t = 1000)]
        users: u32,
        /// Aggregate rates to try, in order (also `--rate 100,200`).
        #[arg(long, alias = "rate", value_delimiter = ',', default_values_t = [2000.0, 5000.0, 10000.0, 20000.0, 40000.0, 80000.0])]
        steps: Vec<f64>,
        /// Seconds per step.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// A step passes when its p99 latency is under this many milliseconds.
        #[arg(long, default_value_t = 100.0)]
        p99_limit_ms: f64,
        /// Seconds of quiet between steps.
        #[arg(long, default_value_t = 2.0)]
        pause: f64,
    },
    /// Idle authenticated WebSocket connections: how many, how fast, how much memory.
    #[command(alias = "W3")]
    W3 {
        #[arg(long, default_value_t = 19_000)]
        connections: usize,
        /// Users whose tokens the connections share.
        #[arg(long, default_value_t = 10)]
        users: u32,
        /// Source addresses 127.0.0.1 .. 127.0.0.N to spread local ports over.
        #[arg(long, default_value_t = 4)]
        sources: u8,
        /// The source addresses themselves, instead of --sources (e.g.
        /// 127.0.1.1,127.0.1.2): several generators on one machine each take
        /// their own, as each address has only so many local ports.
        #[arg(long, value_delimiter = ',')]
        source_addresses: Vec<std::net::IpAddr>,
        /// Meet other generators through files in this directory: announce
        /// `<name>.signed-in`, open the connections once `go` exists, announce
        /// `<name>.held` after the hold, close once `release` exists.
        #[arg(long)]
        sync_dir: Option<PathBuf>,
        /// This generator's name in the sync directory [default: its process id].
        #[arg(long)]
        sync_name: Option<String>,
        /// Connection attempts in flight at once (kept under the server's
        /// listen backlog, 128, so no SYN is dropped and retried a second later).
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Seconds to wait after the last connection before reading memory.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Seconds to hold the connections before checking they still answer.
        #[arg(long, default_value_t = 10.0)]
        hold: f64,
    },
    /// One group; one member sends, every other member receives.
    #[command(alias = "W4")]
    W4 {
        /// Members of the group.
        #[arg(long, default_value_t = 100)]
        users: u32,
        /// Messages per second from the one sender.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Seconds.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
    },
    /// Signed carrier webhooks (Twilio's form) for texts from many outside
    /// numbers to one business number shared by the users, the rate stepped
    /// up; every user receives every text.
    #[command(alias = "W5")]
    W5 {
        /// Extensions sharing the business number (each receives every text).
        #[arg(long, alias = "users", default_value_t = 20)]
        extensions: u32,
        /// Distinct outside numbers the texts come from.
        #[arg(long, default_value_t = 1000)]
        externals: usize,
        /// Webhook rates to try, in order (also `--rate 100,200`).
        #[arg(long, alias = "rate", value_delimiter = ',', default_values_t = [500.0, 1000.0, 2000.0, 5000.0, 10000.0])]
        steps: Vec<f64>,
        /// Seconds per step.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// A step passes when its p99 latency is under this many milliseconds.
        #[arg(long, default_value_t = 50.0)]
        p99_limit_ms: f64,
        /// Seconds of quiet between steps.
        #[arg(long, default_value_t = 2.0)]
        pause: f64,
        /// Webhooks per second of the unjudged first phase, in which each
        /// outside number texts once.
        #[arg(long, default_value_t = 500.0)]
        warm_up_rate: f64,
        /// Post every N-th webhook a second time with the same MessageSid, as
        /// a carrier retries (0: never).
        #[arg(long, default_value_t = 1000)]
        repost_every: u64,
        /// The business number the texts go to (E.164).
        #[arg(long, default_value = "+14155550199")]
        business_number: String,
        /// The carrier connection's name; a later run finds it again by it.
        #[arg(long, default_value = "Load generator (Twilio)")]
        carrier_name: String,
        /// The connection's account SID.
        #[arg(long, default_value = "AC10ad0e4e4a7000000000000000000005")]
        account_sid: String,
        /// The connection's auth token, which signs the webhooks.
        #[arg(
            long,
            env = "SWITCHBOARD_LOADGEN_AUTH_TOKEN",
            default_value = "10ad0e4e4a70d0e5a1140ad0e4e4a705"
        )]
        auth_token: String,
    },
}

impl Cli {
    fn scheduling(&self) -> Scheduling {
        self.common.scheduling.unwrap_or(match self.workload {
            Workload::W2 { .. } | Workload::W5 { .. } => Scheduling::Batch,
            _ => Scheduling::Normal,
        })
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

fn positive_rate(rate: f64) -> Result<f64> {
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        bail!("rates must be positive")
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Every HTTP client of the build needs it (see the dependency's note).
    switchboard_carriers::install_crypto_provider();
    let scheduling = cli.scheduling();
    runtime(scheduling, cli.common.threads)?.block_on(run(cli, scheduling))
}

/// The generator's runtime, with `threads` workers. The calling thread and
/// every thread the runtime starts (the pacer's included) run under
/// `scheduling`.
fn runtime(scheduling: Scheduling, threads: usize) -> Result<tokio::runtime::Runtime> {
    // Threads inherit their creator's policy.
    scheduling.apply_to_current_thread()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")
}

async fn run(cli: Cli, scheduling: Scheduling) -> Result<()> {
    let common = cli.common;
    let Some(admin_password) = common.admin_password.clone() else {
        bail!(
            "--admin-password is required (the password the server was started with, --demo-password)"
        );
    };

    // Many connections need many descriptors: take the whole hard limit.
    let open_files_limit =
        rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;

    let clock = Clock::start();
    let run = clock.now_unix_nanos() / 1_000_000_000;
    let mut nodes = Vec::with_capacity(common.base_url.len());
    for base_url in &common.base_url {
        nodes.push(Node {
            api: Api::new(base_url, common.max_in_flight)?,
            endpoint: Endpoint::from_base_url(base_url).await?,
        });
    }
    let Some(first) = nodes.first().cloned() else {
        bail!("--base-url is required");
    };
    let server_pids = if common.server_pid.is_empty() {
        let mut found = Vec::new();
        for node in &nodes {
            match usage::find_listener(node.endpoint.addr().port()) {
                Ok(pid) if !found.contains(&pid) => found.push(pid),
                Ok(_) => {}
                Err(error) => {
                    eprintln!("server CPU and memory will not be reported: {error:#}");
                    found.clear();
                    break;
                }
            }
        }
        found
    } else {
        common.server_pid.clone()
    };
    let server = (!server_pids.is_empty()).then(|| Process::pids(&server_pids));
    if let Some(process) = &server {
        process
            .sample()
            .context("reading the server's /proc entry (is --server-pid right?)")?;
    }
    let context = Context {
        api: first.api,
        endpoint: first.endpoint,
        nodes,
        directory: Directory {
            organization: common.organization.clone(),
            admin_extension: common.admin_extension.clone(),
            admin_password,
            first_extension: common.first_extension,
            user_password: common.user_password.clone(),
            chunk: common.import_chunk,
            concurrency: common.sign_in_concurrency,
        },
        board: Arc::new(Board::new(run, clock)),
        limits: Limits {
            max_in_flight: common.max_in_flight.max(1),
            max_lag: seconds(common.max_lag, "--max-lag")?,
            grace: seconds(common.grace, "--grace")?,
            attempts: 3,
            send_path: common.send_over,
        },
        server,
        open_files_limit,
        warm_connections: common.warm_connections,
    };

    // The workload runs on a worker thread: tasks it spawns (one per send) then
    // go to that worker's local queue instead of waking a worker each time.
    let context = Arc::new(context);
    let (name, settings, outcome) = tokio::spawn(run_workload(context, cli.workload))
        .await
        .context("the workload task failed")??;

    let report = RunReport {
        workload: name.to_owned(),
        run,
        base_url: common.base_url.join(" "),
        server_pids,
        scheduling,
        settings,
        outcome,
    };
    print!("{}", report::table(&report));
    if let Some(path) = &common.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the JSON report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn run_workload(
    context: Arc<Context>,
    workload: Workload,
) -> Result<(&'static str, serde_json::Value, workload::Outcome)> {
    let context = context.as_ref();
    Ok(match workload {
        Workload::W1 {
            users,
            rate,
            duration,
        } => {
            let settings = json!({"users": users, "rate": rate, "duration": duration});
            let outcome = workload::w1(
                context,
                users,
                positive_rate(rate)?,
                seconds(duration, "--duration")?,
            )
            .await?;
            ("w1", settings, outcome)
        }
        Workload::W2 {
            users,
            steps,
            duration,
            p99_limit_ms,
            pause,
        } => {
            let settings = json!({"users": users, "steps": steps, "duration": duration, "p99_limit_ms": p99_limit_ms});
            for &rate in &steps {
                positive_rate(rate)?;
            }
            let rule = StepRule {
                p99_limit: seconds(p99_limit_ms / 1e3, "--p99-limit-ms")?,
            };
            let outcome = workload::w2(
                context,
                users,
                &steps,
                seconds(duration, "--duration")?,
                rule,
                seconds(pause, "--pause")?,
            )
            .await?;
            ("w2", settings, outcome)
        }
        Workload::W3 {
            connections,
            users,
            sources,
            source_addresses,
            sync_dir,
            sync_name,
            concurrency,
            settle,
            hold,
        } => {
            let sources = if source_addresses.is_empty() {
                workload::loopback_sources(sources)
            } else {
                source_addresses
            };
            let settings = json!({"connections": connections, "users": users, "sources": sources, "concurrency": concurrency});
            let options = IdleOptions {
                connections,
                sources,
                concurrency,
                ready: None,
                settle: seconds(settle, "--settle")?,
                hold: seconds(hold, "--hold")?,
                sync: sync_dir.map(|dir| idle::Sync {
                    dir,
                    name: sync_name.unwrap_or_else(|| std::process::id().to_string()),
                }),
            };
            ("w3", settings, workload::w3(context, users, options).await?)
        }
        Workload::W4 {
            users,
            rate,
            duration,
        } => {
            let settings = json!({"users": users, "rate": rate, "duration": duration});
            let outcome = workload::w4(
                context,
                users,
                positive_rate(rate)?,
                seconds(duration, "--duration")?,
            )
            .await?;
            ("w4", settings, outcome)
        }
        Workload::W5 {
            extensions,
            externals,
            steps,
            duration,
            p99_limit_ms,
            pause,
            warm_up_rate,
            repost_every,
            business_number,
            carrier_name,
            account_sid,
            auth_token,
        } => {
            let settings = json!({"extensions": extensions, "externals": externals, "steps": steps,
                "duration": duration, "p99_limit_ms": p99_limit_ms, "warm_up_rate": warm_up_rate,
                "repost_every": repost_every, "business_number": business_number});
            for &rate in &steps {
                positive_rate(rate)?;
            }
            let business = business_number.trim();
            if !(business.starts_with('+')
                && business.len() > 8
                && business[1..].chars().all(|c| c.is_ascii_digit()))
            {
                bail!("--business-number must be in E.164 form, e.g. +14155550199");
            }
            let w5 = W5 {
                extensions,
                externals,
                steps,
                duration: seconds(duration, "--duration")?,
                rule: StepRule {
                    p99_limit: seconds(p99_limit_ms / 1e3, "--p99-limit-ms")?,
                },
                pause: seconds(pause, "--pause")?,
                carrier: CarrierSetup {
                    name: carrier_name,
                    account_sid,
                    auth_token,
                    business_number: business.to_owned(),
                },
                repost_every,
                warm_up_rate: positive_rate(warm_up_rate)?,
                connections: context.warm_connections,
            };
            ("w5", settings, workload::w5(context, w5).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduling_of(args: &[&str]) -> Scheduling {
        let cli =
            Cli::try_parse_from(std::iter::once("switchboard-loadgen").chain(args.iter().copied()))
                .expect("arguments parse");
        cli.scheduling()
    }

    #[test]
    fn the_runtime_threads_run_under_the_chosen_policy() {
        let seen = std::thread::spawn(|| {
            let runtime = runtime(Scheduling::Batch, 1)?;
            runtime.block_on(async {
                let worker = tokio::spawn(async { Scheduling::of_current_thread() }).await?;
                // The pacer runs on a blocking thread.
                let blocking = tokio::task::spawn_blocking(Scheduling::of_current_thread).await?;
                anyhow::Ok((worker, blocking))
            })
        })
        .join()
        .expect("test thread")
        .expect("runtime starts");
        assert_eq!(seen, (Some(Scheduling::Batch), Some(Scheduling::Batch)));
    }

    #[test]
    fn the_throughput_ramp_yields_to_the_server_and_the_latency_workloads_do_not() {
        assert_eq!(scheduling_of(&["w2"]), Scheduling::Batch);
        assert_eq!(scheduling_of(&["w1"]), Scheduling::Normal);
        assert_eq!(scheduling_of(&["w3"]), Scheduling::Normal);
        assert_eq!(scheduling_of(&["w4"]), Scheduling::Normal);
        assert_eq!(scheduling_of(&["w5"]), Scheduling::Batch);
        assert_eq!(
            scheduling_of(&["--scheduling", "normal", "w2"]),
            Scheduling::Normal
        );
        assert_eq!(
            scheduling_of(&["w1", "--scheduling", "batch"]),
            Scheduling::Batch
        );
    }
}
