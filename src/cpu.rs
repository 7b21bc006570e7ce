//! The CPU time of the commands and of the timer's ticks, for `INFO presence`
//! (`presence_command_max_cpu_us`, `presence_commands_over_5ms_cpu`,
//! `presence_ticks_over_5ms_cpu`), read sparingly: the thread's CPU clock is a system call.

use crate::ffi::context::thread_cpu_us;
use crate::state;
use std::time::{Duration, Instant};

/// The oldest a reading of the thread's CPU time may be when a command or a timer tick starts,
/// for it to stand for the start.
const CPU_MARK_AGE: Duration = Duration::from_micros(250);

/// The CPU time (µs) over which a command or a timer tick is counted in `INFO presence`
/// (`presence_commands_over_5ms_cpu`, `presence_ticks_over_5ms_cpu`).
const CPU_COUNTED_US: u64 = 5_000;

/// A reading of the thread's CPU time (µs) taken at most [`CPU_MARK_AGE`] before `now`: the
/// last one, or a new one when it is older.
pub fn cpu_mark(now: Instant) -> u64 {
    match state::module(|m| m.cpu_mark.get()) {
        Some((at, cpu)) if now.duration_since(at) <= CPU_MARK_AGE => cpu,
        _ => {
            let cpu = thread_cpu_us();
            state::module(|m| m.cpu_mark.set(Some((now, cpu))));
            cpu
        }
    }
}

/// The wall-clock time since `started`, in µs: an upper bound of the CPU time used since.
fn micros_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The CPU time of work that took `wall` µs since it started, when the thread's CPU time read
/// `mark` at most [`CPU_MARK_AGE`] before: the lesser of `wall` and the CPU time from `mark` to
/// now, that is the work's own CPU time plus at most what the thread used in the
/// [`CPU_MARK_AGE`] before it.
fn cpu_used(wall: u64, mark: u64) -> u64 {
    let cpu = thread_cpu_us();
    state::module(|m| m.cpu_mark.set(Some((Instant::now(), cpu))));
    wall.min(cpu.saturating_sub(mark))
}

/// Records the CPU time of a command that started at `started` (the thread's CPU time read
/// `mark` then, [`cpu_mark`]): `presence_command_max_cpu_us` and
/// `presence_commands_over_5ms_cpu`.
///
/// The CPU clock is a system call (0.1 to 1.5 µs, as much as a whole `PRESENCE.COUNT`), so a
/// command reads it only when its wall-clock time, which its CPU time cannot exceed, is over
/// the maximum so far or over 5 ms, and otherwise at most once per [`CPU_MARK_AGE`] for the
/// commands that follow ([`cpu_used`]). Time the scheduler gave the CPU to other work is not
/// counted.
pub fn note_command_cpu(started: Instant, mark: u64) {
    let wall = micros_since(started);
    state::unless_busy(|s| {
        let stats = &mut s.stats;
        if wall > stats.max_command_cpu_us.min(CPU_COUNTED_US) {
            let cpu = cpu_used(wall, mark);
            stats.max_command_cpu_us = stats.max_command_cpu_us.max(cpu);
            stats.commands_over_5ms_cpu += u64::from(cpu > CPU_COUNTED_US);
        }
    });
}

/// Counts a timer tick that started at `started` (`mark`: [`cpu_mark`]) in
/// `presence_ticks_over_5ms_cpu` when it used over 5 ms of CPU ([`note_command_cpu`] tells
/// how that is read).
pub fn note_tick_cpu(started: Instant, mark: u64) {
    let wall = micros_since(started);
    if wall > CPU_COUNTED_US {
        let cpu = cpu_used(wall, mark);
        state::unless_busy(|s| {
            s.stats.max_timer_tick_cpu_us = s.stats.max_timer_tick_cpu_us.max(cpu);
            if cpu > CPU_COUNTED_US {
                s.stats.ticks_over_5ms_cpu += 1;
            }
        });
    }
}
