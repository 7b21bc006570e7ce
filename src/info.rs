//! The `INFO presence` section.

use crate::config;
use crate::ffi::info::InfoSection;
use crate::rebuild;
use crate::state::{self, State};
use std::ffi::CStr;

/// The figures of the section, summed over every database.
#[derive(Debug, Default)]
struct Figures {
    live: usize,
    indexed: usize,
    rooms: usize,
    backlog: usize,
    pending: usize,
    leases: usize,
    data: usize,
    data_checks: usize,
}

impl Figures {
    /// The figures of `state` now.
    fn of(state: &State) -> Figures {
        let mut figures = Figures {
            pending: state.pending.len(),
            ..Figures::default()
        };
        let now = config::moment_now();
        for index in state.dbs.values() {
            figures.live += index.live(now);
            figures.backlog += index.rooms.backlog();
            figures.indexed += index.rooms.entries();
            figures.rooms += index.rooms.rooms();
            figures.leases += index.leases.live(now);
            figures.data += index.data.len();
            figures.data_checks += index.data.orphans();
        }
        figures
    }
}

/// Fills the `INFO presence` section.
pub fn on_info(section: &InfoSection) {
    let Some((figures, stats)) = state::unless_busy(|s| Some((Figures::of(s), s.stats))) else {
        return;
    };
    let fields: [(&CStr, u64); 22] = [
        (c"live", figures.live as u64),
        (c"rooms", figures.rooms as u64),
        (c"indexed", figures.indexed as u64),
        (c"backlog", figures.backlog as u64),
        (c"pending_raw_writes", figures.pending as u64),
        (c"sweeps", stats.sweeps),
        (c"swept", stats.swept),
        (c"leases", figures.leases as u64),
        (c"swept_node_down", stats.node_down),
        (c"data_keys", figures.data as u64),
        (c"data_checks", figures.data_checks as u64),
        (c"events", stats.events),
        (c"sweep_tick_max_us", stats.max_tick_us),
        (c"sweep_tick_max_cpu_us", stats.max_tick_cpu_us),
        (c"sweep_ticks_slow", stats.slow_ticks),
        (c"ticks_over_5ms_cpu", stats.ticks_over_5ms_cpu),
        (c"timer_tick_max_cpu_us", stats.max_timer_tick_cpu_us),
        (c"command_max_cpu_us", stats.max_command_cpu_us),
        (c"commands_over_5ms_cpu", stats.commands_over_5ms_cpu),
        (c"sweep_interval_ms", config::sweep_interval_ms() as u64),
        (c"rebuilding", u64::from(rebuild::in_progress())),
        (c"reentrant_calls", state::reentrant_calls()),
    ];
    for (name, value) in fields {
        section.field(name, value);
    }
}
