//! Where the module's state ([`State`], from the core: one room index per database, the raw
//! writes waiting to be read, the counters `INFO presence` shows) lives: Redis calls the module
//! from its main thread only, so in a thread-local cell.
//!
//! **The failure policy, in one place:** a second access while the state is in use further up
//! the stack is a bug (nothing may call into Redis inside [`with`], since Redis can call back
//! into the module). [`with`] refuses it instead of panicking (a panic would abort Redis), logs
//! it once with a warning, counts it (`presence_reentrant_calls` in `INFO presence`), and
//! returns [`Busy`]: a command answers `ERR presence state is busy (re-entrant call)`, any other
//! caller goes on without the state.
//!
//! A few flags live beside the state, each because it is read or written precisely while the
//! state may be borrowed, or from code that must not borrow it: [`is_muted`] (around the
//! module's own keyspace notifications, which call back into its hooks), the sweeper's timer
//! (armed from `CONFIG SET` callbacks), the rebuild's scan cursor, the database a `MOVE`
//! started from (Valkey), and the configs (atomics Redis's config callbacks write).

pub use presence_core::state::{State, Stats};
use redis_module::RedisError;
use std::cell::{Cell, RefCell};

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::new());
    static MUTED: Cell<bool> = const { Cell::new(false) };
    static REENTRANT: Cell<u64> = const { Cell::new(0) };
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
    REENTRANT.with(Cell::get)
}

/// Starts from an empty state (a load that follows a refused one finds the old state, since
/// the library may stay mapped).
pub fn reset() {
    let _ = with(|s| *s = State::new());
    REENTRANT.with(|r| r.set(0));
}

/// Runs `f` on the state; [`Busy`] (logged and counted, `f` not run) when the state is already
/// in use further up the stack.
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, Busy> {
    let result = STATE.with(|cell| cell.try_borrow_mut().ok().map(|mut state| f(&mut state)));
    result.ok_or_else(|| {
        REENTRANT.with(|r| r.set(r.get() + 1));
        redis_module::logging::log_warning(
            "presence: a re-entrant access to the module's state was refused (a bug: please report it)",
        );
        Busy
    })
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
