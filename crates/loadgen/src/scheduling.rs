//! How the kernel schedules the generator's threads against the server's.
//!
//! On a machine the two share, every wake-up of a generator thread (a frame
//! arrived, a send is due) may preempt a server thread that was running.
//! Under `SCHED_BATCH` a waking generator thread takes a free core, or waits
//! for the running thread's turn to end, instead of cutting it short: the
//! server gets the machine a remote client would leave it. Whatever that
//! waiting costs lands in the generator's own figures (a send leaves later
//! than due, a delivery is read later than it arrived), never in the
//! server's favour, which is why the workloads measured by their latency
//! alone keep the normal policy and only the throughput ramp defaults to it.

use anyhow::{Context as _, Result};
use serde::Serialize;
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id, thread_schedule_policy,
};

/// The scheduling policy of the generator's threads (Linux `sched(7)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scheduling {
    /// `SCHED_OTHER`: a generator thread woken by a frame runs at once,
    /// preempting a server thread if it must.
    Normal,
    /// `SCHED_BATCH`: a waking generator thread never preempts; it waits
    /// for a free core or the end of the running thread's turn.
    Batch,
}

impl Scheduling {
    pub fn name(self) -> &'static str {
        match self {
            Scheduling::Normal => "normal",
            Scheduling::Batch => "batch",
        }
    }

    fn policy(self) -> ThreadSchedulePolicy {
        ThreadSchedulePolicy::Normal(match self {
            Scheduling::Normal => NormalThreadSchedulePolicy::Other,
            Scheduling::Batch => NormalThreadSchedulePolicy::Batch,
        })
    }

    /// Puts the calling thread under this policy; threads it starts
    /// afterwards inherit it. A thread already under it is left as it is
    /// (with its nice value: `chrt -b 0 nice -n 5 switchboard-loadgen w2`
    /// keeps both); otherwise the thread gets the policy at nice 0.
    pub fn apply_to_current_thread(self) -> Result<()> {
        if Scheduling::of_current_thread() == Some(self) {
            return Ok(());
        }
        let nice_zero = ThreadPriority::Os(ThreadPriorityOsValue::default());
        set_thread_priority_and_policy(thread_native_id(), nice_zero, self.policy())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| {
                format!(
                    "putting the generator under the {} scheduling policy at nice 0 \
                     (choose another with --scheduling, or start it under `chrt`)",
                    self.name()
                )
            })
    }

    /// The calling thread's policy, if it is one of these two.
    pub(crate) fn of_current_thread() -> Option<Scheduling> {
        match thread_schedule_policy().ok()? {
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other) => {
                Some(Scheduling::Normal)
            }
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch) => {
                Some(Scheduling::Batch)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value, field 19 of its `stat`.
    fn nice_of_current_thread() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("own stat");
        crate::usage::stat_field(&stat, 19).expect("nice field")
    }

    #[test]
    fn a_thread_already_under_the_policy_keeps_its_nice_value() {
        let nice = std::thread::spawn(|| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                Scheduling::Batch.policy(),
            )
            .expect("raising one's own nice value needs no privilege");
            let before = nice_of_current_thread();
            Scheduling::Batch.apply_to_current_thread()?;
            anyhow::Ok((before, nice_of_current_thread()))
        })
        .join()
        .expect("test thread")
        .expect("nothing to change");
        assert!(nice.0 > 0, "the test thread was niced: {nice:?}");
        assert_eq!(nice.0, nice.1);
    }

    #[test]
    fn a_policy_applies_to_the_thread_and_to_the_threads_it_starts() {
        let seen = std::thread::spawn(|| {
            Scheduling::Batch.apply_to_current_thread()?;
            let child = std::thread::spawn(Scheduling::of_current_thread)
                .join()
                .map_err(|_| anyhow::anyhow!("child thread panicked"))?;
            let own = Scheduling::of_current_thread();
            Scheduling::Normal.apply_to_current_thread()?;
            anyhow::Ok((own, child, Scheduling::of_current_thread()))
        })
        .join()
        .expect("test thread")
        .expect("policies can be set without privileges");
        assert_eq!(
            seen,
            (
                Some(Scheduling::Batch),
                Some(Scheduling::Batch),
                Some(Scheduling::Normal)
            )
        );
    }
}
