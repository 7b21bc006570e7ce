//! Everything the module keeps between calls, in one place: [`Module`], one value per process
//! (Redis calls the module from its main thread only, so a thread-local). It is created at the
//! first call after the library is mapped, emptied again at each load ([`reset`]: a load that
//! follows a refused one finds the old values, since the library stays mapped), and lives until
//! the process exits. The configs are the one exception: atomics in `config.rs`, since Redis's
//! config callbacks write them.
//!
//! **The failure policy, in one place:** a second access to the core [`State`] while it is in
//! use further up the stack is a bug (nothing may call into Redis inside [`with`], since Redis
//! can call back into the module). [`with`] refuses it instead of panicking (a panic would abort
//! Redis), logs a warning each time, counts it (`presence_reentrant_calls` in `INFO presence`)
//! and returns [`Busy`]. A command answers `ERR presence state is busy (re-entrant call)` (`?`
//! on [`with`]); every other caller goes through [`unless_busy`], which goes on without the
//! state.
//!
//! The other fields of [`Module`] are cells beside the state, each because it is read or
//! written precisely while the state may be borrowed, or from code that must not borrow it.

use crate::ffi::scan::ScanCursor;
use crate::ffi::timer::{TimerContext, TimerId};
use presence_core::cluster::{Health, View};
pub use presence_core::state::{State, Stats};
use redis_module::RedisError;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// The client command running now, as far as moving keys between cluster nodes goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    /// `MIGRATE`: the keys it deletes moved to another node.
    Migrate,
    /// `RESTORE-ASKING`: the key it writes moved here from another node of the cluster.
    RestoreAsking,
    /// Anything else.
    Other,
}

/// What `cluster.rs` knows of its node.
pub struct ClusterNode {
    /// The node as last read; `None` before the first read (or on a standalone server).
    pub view: RefCell<Option<View>>,
    /// Until when (Unix ms) the node's view is read again at every presence command: for a
    /// while after a client ran a `CLUSTER` command (Valkey applies a `SETSLOT` only once its
    /// replicas have it, after the command was seen).
    pub stale_until: Cell<i64>,
    /// How long the node has been a healthy slot owner.
    pub health: Cell<Health>,
    /// True when the sweeper found a presence of a slot the node does not own (it lost the
    /// slot, or loaded old data): it waits until the node's slots change.
    pub stray: Cell<bool>,
    /// The client command running now.
    pub running: Cell<Running>,
}

/// Everything the module keeps between calls (see the module's documentation).
pub struct Module {
    /// The core state: one room index per database, the raw writes waiting to be read, the
    /// counters `INFO presence` shows. Reached through [`with`] and [`unless_busy`] only.
    state: RefCell<State>,
    /// How many accesses to the state were refused as re-entrant.
    reentrant: Cell<u64>,
    /// True while the module notifies about its own writes ([`muted`]).
    muted: Cell<bool>,
    /// The sweeper's context kept from load, to arm the timer outside a callback (on
    /// `CONFIG SET`).
    pub timer_ctx: RefCell<Option<TimerContext>>,
    /// The sweeper's armed timer, if any.
    pub timer: Cell<Option<TimerId>>,
    /// True between the start and the end of a replica's `swapdb` load: the `loaded`
    /// notifications are for keys of a temporary database.
    pub swapdb_load: Cell<bool>,
    /// The rebuild under way: the database being scanned and the scan's cursor.
    pub rebuild: RefCell<Option<(i32, ScanCursor)>>,
    /// The database a `MOVE` started from: some servers (Valkey 8) run notification callbacks
    /// on the client that caused them and leave it in the event's database; it is selected
    /// again once `move_to` is handled.
    pub origin_db: Cell<Option<i32>>,
    /// The keys among the waiting writes that a `RESTORE-ASKING` brought here from another
    /// node of the cluster: their first read indexes them without a word. A mark counts only
    /// while its key still waits, and a raw write to the key before that read takes it away.
    pub arrived: RefCell<Vec<(i32, Vec<u8>)>>,
    /// What the module knows of its cluster node.
    pub cluster: ClusterNode,
    /// The thread's CPU time in µs, and when it was read (`cpu.rs`).
    pub cpu_mark: Cell<Option<(Instant, u64)>>,
}

impl Module {
    fn new() -> Module {
        Module {
            state: RefCell::new(State::new()),
            reentrant: Cell::new(0),
            muted: Cell::new(false),
            timer_ctx: RefCell::new(None),
            timer: Cell::new(None),
            swapdb_load: Cell::new(false),
            rebuild: RefCell::new(None),
            origin_db: Cell::new(None),
            arrived: RefCell::new(Vec::new()),
            cluster: ClusterNode {
                view: RefCell::new(None),
                stale_until: Cell::new(i64::MAX),
                health: Cell::new(Health::new()),
                stray: Cell::new(false),
                running: Cell::new(Running::Other),
            },
            cpu_mark: Cell::new(None),
        }
    }
}

thread_local! {
    static MODULE: Module = Module::new();
}

/// Runs `f` on the module's values.
pub fn module<R>(f: impl FnOnce(&Module) -> R) -> R {
    MODULE.with(f)
}

/// The state was in use further up the stack (see the module's failure policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl From<Busy> for RedisError {
    fn from(_: Busy) -> RedisError {
        RedisError::Str("ERR presence state is busy (re-entrant call)")
    }
}

/// How many accesses to the state were refused as re-entrant.
pub fn reentrant_calls() -> u64 {
    module(|m| m.reentrant.get())
}

/// Starts from an empty state and no refused access, at load.
pub fn reset() {
    unless_busy(|s| *s = State::new());
    module(|m| m.reentrant.set(0));
}

/// Runs `f` on the state; [`Busy`] (logged and counted, `f` not run) when the state is already
/// in use further up the stack. For commands, which answer the error.
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, Busy> {
    MODULE.with(|m| {
        let Ok(mut state) = m.state.try_borrow_mut() else {
            m.reentrant.set(m.reentrant.get() + 1);
            redis_module::logging::log_warning(
                "presence: a re-entrant access to the module's state was refused (a bug: please report it)",
            );
            return Err(Busy);
        };
        Ok(f(&mut state))
    })
}

/// [`with`] for every caller but the commands: when the state is busy (logged and counted),
/// `f` does not run and the caller goes on with `R::default()` (nothing found, nothing to
/// announce).
pub fn unless_busy<R: Default>(f: impl FnOnce(&mut State) -> R) -> R {
    with(f).unwrap_or_default()
}

/// Runs `f` with the module's own keyspace notifications ignored by its hooks.
pub fn muted<R>(f: impl FnOnce() -> R) -> R {
    let before = module(|m| m.muted.replace(true));
    let result = f();
    module(|m| m.muted.set(before));
    result
}

/// True while the module is notifying about its own writes.
pub fn is_muted() -> bool {
    module(|m| m.muted.get())
}
