//! Where the module's state ([`State`], from the core: one room index per database, the raw
//! writes waiting to be read, the counters `INFO presence` shows) lives: Redis calls the module
//! from its main thread only, so in a thread-local cell; a re-entrant access is refused instead
//! of panicking.

pub use presence_core::state::{State, Stats};
use std::cell::{Cell, RefCell};

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
