//! The module's state: one room index per database, the raw writes waiting to be read, and the
//! counters `INFO presence` shows. Redis calls the module from its main thread only, so the
//! state lives in a thread-local cell; a re-entrant access is refused instead of panicking.

use crate::core::index::RoomIndex;
use crate::core::keys::KeyFormat;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Counters shown by `INFO presence`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Sweeps run (timer ticks that swept, and `PRESENCE.SWEEP` calls).
    pub sweeps: u64,
    /// Presences the sweeper removed.
    pub swept: u64,
    /// Events published.
    pub events: u64,
    /// The longest sweep tick, in microseconds.
    pub max_tick_us: u64,
    /// The most CPU time one sweep tick used, in microseconds (the wall-clock figure above
    /// also counts the time the machine gave the CPU to other work).
    pub max_tick_cpu_us: u64,
    /// Timer ticks that took longer than [`crate::sweeper::SLOW_TICK_US`] of wall clock.
    pub slow_ticks: u64,
}

/// Everything the module keeps between calls.
#[derive(Debug)]
pub struct State {
    /// The room index of each database that holds presences.
    pub dbs: BTreeMap<i32, RoomIndex>,
    /// Keys written by a raw string command (`SET`, `SETRANGE`, …) whose new value and TTL are
    /// read at the next event for the key, command, or sweep tick (Redis 7.0 sends `set` before
    /// the `expire` of a `SET … EX`).
    pub pending: Vec<(i32, Vec<u8>)>,
    /// The form of key names of this server's mode.
    pub format: KeyFormat,
    /// Counters.
    pub stats: Stats,
}

impl State {
    fn new() -> Self {
        State {
            dbs: BTreeMap::new(),
            pending: Vec::new(),
            format: KeyFormat::Standalone,
            stats: Stats::default(),
        }
    }

    /// The index of `db`, created when missing.
    pub fn db(&mut self, db: i32) -> &mut RoomIndex {
        self.dbs.entry(db).or_default()
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::new());
    static MUTED: Cell<bool> = const { Cell::new(false) };
}

/// Starts from an empty state (a load that follows a refused one finds the old state, since
/// the library may stay mapped).
pub fn reset() {
    with(|s| *s = State::new());
}

/// Runs `f` on the state. Returns `None` (and does nothing) if the state is already in use
/// further up the stack, which would be a bug: no call into Redis may happen inside `f`.
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|cell| cell.try_borrow_mut().ok().map(|mut state| f(&mut state)))
}

/// Runs `f` with the module's own keyspace notifications ignored by its hooks.
pub fn muted<R>(f: impl FnOnce() -> R) -> R {
    let before = MUTED.with(|m| m.replace(true));
    let result = f();
    MUTED.with(|m| m.set(before));
    result
}

/// True while the module is notifying about its own writes.
pub fn is_muted() -> bool {
    MUTED.with(Cell::get)
}
