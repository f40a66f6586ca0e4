//! CPU time and resident memory of a process (the server, or the generator
//! itself) and of the whole machine, read from `/proc`, so a report can show
//! where the CPU went and that the generator was not the bottleneck.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::scheduling::Scheduling;

/// Linux reports process times in USER_HZ ticks, fixed at 100 on every
/// architecture this runs on (it is not the kernel's internal HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// Which process to watch: one, or several read as one (the nodes of a
/// server that runs as several processes: their CPU and memory add up).
#[derive(Debug, Clone)]
pub struct Process {
    dirs: Vec<PathBuf>,
}

impl Process {
    pub fn pids(pids: &[u32]) -> Self {
        Process {
            dirs: pids
                .iter()
                .map(|pid| PathBuf::from(format!("/proc/{pid}")))
                .collect(),
        }
    }

    pub fn current() -> Self {
        Process {
            dirs: vec![PathBuf::from("/proc/self")],
        }
    }

    pub fn sample(&self) -> Result<Sample> {
        let mut sample = Sample {
            at: Instant::now(),
            cpu_ticks: 0,
            rss_kib: 0,
        };
        for dir in &self.dirs {
            let stat = std::fs::read_to_string(dir.join("stat"))
                .with_context(|| format!("reading {}", dir.join("stat").display()))?;
            let status = std::fs::read_to_string(dir.join("status"))
                .with_context(|| format!("reading {}", dir.join("status").display()))?;
            sample.cpu_ticks += cpu_ticks(&stat)?;
            sample.rss_kib += rss_kib(&status)?;
        }
        Ok(sample)
    }
}

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    cpu_ticks: u64,
    pub rss_kib: u64,
}

/// What a process used between two samples.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    /// CPU time over wall time, in percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    pub cpu_seconds: f64,
    /// Resident memory at the end, MiB.
    pub rss_mib: f64,
}

impl Usage {
    pub fn between(before: &Sample, after: &Sample) -> Usage {
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let cpu_seconds =
            after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / TICKS_PER_SECOND;
        Usage {
            cpu_percent: if wall > 0.0 {
                100.0 * cpu_seconds / wall
            } else {
                0.0
            },
            cpu_seconds,
            rss_mib: after.rss_kib as f64 / 1024.0,
        }
    }
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name in
/// field 2 may hold spaces and parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Result<u64> {
    // utime is field 14, stime field 15.
    let ticks = stat_field(stat, 14)? + stat_field(stat, 15)?;
    u64::try_from(ticks).context("negative CPU time in stat")
}

/// Field `n` of a `/proc/…/stat` line, numbered from 1 as in proc(5).
pub(crate) fn stat_field(stat: &str, n: usize) -> Result<i64> {
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in stat")?;
    // The name may hold spaces and parentheses; after it, state is field 3.
    let index = n
        .checked_sub(3)
        .context("fields 1 and 2 are the pid and name")?;
    after_name
        .split_whitespace()
        .nth(index)
        .context("stat too short")?
        .parse()
        .context("stat field is not a number")
}

/// VmRSS from the text of `/proc/<pid>/status`, in KiB.
fn rss_kib(status: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS in status")?;
    line.trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("VmRSS is not a number")
}

/// The whole machine's busy share, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy)]
pub struct MachineSample {
    busy: u64,
    total: u64,
}

impl MachineSample {
    pub fn take() -> Result<MachineSample> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        parse_machine(&stat)
    }

    /// Percent of all cores busy between two samples.
    pub fn busy_percent(&self, later: &MachineSample) -> f64 {
        let total = later.total.saturating_sub(self.total);
        let busy = later.busy.saturating_sub(self.busy);
        if total == 0 {
            0.0
        } else {
            100.0 * busy as f64 / total as f64
        }
    }
}

fn parse_machine(stat: &str) -> Result<MachineSample> {
    let line = stat.lines().next().context("empty /proc/stat")?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse::<u64>().context("bad /proc/stat"))
        .collect::<Result<_>>()?;
    // user nice system idle iowait irq softirq steal; guest time is already in user.
    let total: u64 = numbers.iter().take(8).sum();
    let idle = numbers.get(3).copied().unwrap_or(0) + numbers.get(4).copied().unwrap_or(0);
    Ok(MachineSample {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// A thread that does nothing but sleep 1 ms at a time and records, per
/// second, how much later than asked it woke up. It needs no CPU to speak of,
/// so when it oversleeps by hundreds of milliseconds the machine (not the
/// server, not the generator's own work) withheld the CPU: other processes,
/// or the host. Phases put its figures beside their latencies.
pub struct StallProbe {
    seconds: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StallProbe {
    /// Starts probing for up to `seconds` seconds; returns once the probe
    /// runs under the normal scheduling policy.
    pub fn start(seconds: usize) -> StallProbe {
        let seconds: Arc<Vec<AtomicU64>> =
            Arc::new((0..seconds).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let (ready, probing) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let (seconds, stop) = (seconds.clone(), stop.clone());
            std::thread::Builder::new()
                .name("stall-probe".into())
                .spawn(move || {
                    // Under the generator's batch policy a waking probe would
                    // also count its own wait for a turn, not only the
                    // machine's stalls.
                    let _ = Scheduling::Normal.apply_to_current_thread();
                    let _ = ready.send(());
                    let tick = Duration::from_millis(1);
                    while !stop.load(Ordering::Relaxed) {
                        let before = Instant::now();
                        std::thread::sleep(tick);
                        let late = before.elapsed().saturating_sub(tick);
                        let second = before.saturating_duration_since(started).as_secs() as usize;
                        let Some(cell) = seconds.get(second) else {
                            break;
                        };
                        cell.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                    }
                })
                .ok()
        };
        // A probe that failed to start never answers: its sender is gone.
        let _ = probing.recv();
        StallProbe {
            seconds,
            stop,
            thread,
        }
    }

    /// Stops the probe; answers the worst oversleep of each second, in ms.
    pub fn finish(mut self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.seconds
            .iter()
            .map(|cell| cell.load(Ordering::Relaxed) as f64 / 1e3)
            .collect()
    }
}

/// The machine's count of connection attempts dropped because a listen queue
/// was full (`TcpExt: ListenOverflows` in `/proc/net/netstat`). A client whose
/// SYN is dropped retries a second later, so any increase during a phase
/// shows up as latency of about one second.
pub fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    netstat_field(&text, "TcpExt:", "ListenOverflows")
}

fn netstat_field(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|line| line.starts_with(prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let position = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(position)?.parse().ok()
}

/// The process listening on a TCP port on this machine: finds the socket's inode
/// in `/proc/net/tcp{,6}` and then the process holding it. Needs the right to
/// read other processes' fd tables (same user, or root).
pub fn find_listener(port: u16) -> Result<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        bail!("nothing listens on port {port}");
    }
    let wanted: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    for entry in std::fs::read_dir("/proc")
        .context("reading /proc")?
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if holds_socket(&entry.path(), &wanted) {
            return Ok(pid);
        }
    }
    bail!("port {port} is open but no readable process holds it; pass --server-pid")
}

fn holds_socket(process: &Path, wanted: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(process.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| target.to_str().map(|t| wanted.iter().any(|w| w == t)))
            .unwrap_or(false)
    })
}

/// Inodes of sockets in state LISTEN (0A) on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    let wanted = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            (local_port == wanted && *fields.get(3)? == "0A")
                .then(|| fields.get(9)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_odd_names() {
        let stat = "4242 (switch (board) x) S 1 4242 4242 0 -1 4194304 1000 0 0 0 250 75 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat).ok(), Some(325));
    }

    #[test]
    fn the_stall_probe_runs_under_the_normal_policy_whatever_the_generator_runs_under() {
        let policies = std::thread::spawn(|| {
            Scheduling::Batch
                .apply_to_current_thread()
                .expect("batch needs no privilege");
            let probe = StallProbe::start(2);
            let policies = threads_named("stall-probe")
                .iter()
                .map(|stat| stat_field(stat, 41).expect("policy field"))
                .collect::<Vec<_>>();
            probe.finish();
            policies
        })
        .join()
        .expect("test thread");
        // Field 41 of a thread's stat is its policy: 0 is SCHED_OTHER, 3 SCHED_BATCH.
        assert!(!policies.is_empty(), "no stall-probe thread found");
        assert!(policies.iter().all(|p| *p == 0), "{policies:?}");
    }

    /// The `stat` of each of this process's threads called `name`.
    fn threads_named(name: &str) -> Vec<String> {
        let tasks = std::fs::read_dir("/proc/self/task").expect("own tasks");
        tasks
            .filter_map(|task| {
                let path = task.ok()?.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                (comm.trim_end() == name)
                    .then(|| std::fs::read_to_string(path.join("stat")).ok())
                    .flatten()
            })
            .collect()
    }

    #[test]
    fn reads_rss() {
        let status = "Name:\tswitchboard\nVmPeak:\t  200000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(rss_kib(status).ok(), Some(51234));
    }

    #[test]
    fn reads_machine_busy() {
        let a = parse_machine("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n").ok();
        let b = parse_machine("cpu  200 0 200 800 100 0 0 0 0 0\n").ok();
        let (Some(a), Some(b)) = (a, b) else {
            panic!("parse failed");
        };
        assert!((a.busy_percent(&b) - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn finds_listening_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), vec![123456]);
        assert!(listening_inodes(table, 8081).is_empty());
    }

    #[test]
    fn reads_netstat_fields() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 1 2536 2537\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            netstat_field(text, "TcpExt:", "ListenOverflows"),
            Some(2536)
        );
        assert_eq!(netstat_field(text, "TcpExt:", "Missing"), None);
    }

    #[test]
    fn stall_probe_reports_each_second() {
        let probe = StallProbe::start(3);
        std::thread::sleep(Duration::from_millis(30));
        let seconds = probe.finish();
        assert_eq!(seconds.len(), 3);
        assert!(seconds.iter().all(|ms| *ms >= 0.0));
    }

    #[test]
    fn samples_itself() {
        let sample = Process::current().sample();
        assert!(sample.is_ok_and(|s| s.rss_kib > 0));
    }
}
