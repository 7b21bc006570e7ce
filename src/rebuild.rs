//! Rebuilding the index from the keys, in bounded slices, after a replica swapped in a dataset
//! loaded with `repl-diskless-load swapdb`.
//!
//! During such a load Redis puts the keys into a temporary database while it keeps serving the
//! old one (async loading), and the `loaded` notification of each key selects the old one, so
//! the module cannot read what was loaded: the hooks ignore those notifications, and the old
//! index keeps answering for the old data. When the load completes and the new data is swapped
//! in, the index is emptied and rebuilt by a keyspace scan that the sweeper's timer runs in
//! slices of [`crate::sweeper::TICK_BUDGET`], one database after the other, announcing nothing.
//! Meanwhile every `PRESENCE.*` command answers `LOADING`, and the sweeper sweeps nothing;
//! keyspace notifications keep updating the new index as usual.

use crate::api::ScanCursor;
use crate::reconcile;
use crate::state;
use crate::store;
use presence_core::keys;
use redis_module::Context;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

thread_local! {
    /// True between the `loaded` notifications' start and end of a `swapdb` load: they are for
    /// keys of a temporary database.
    static SWAPDB_LOAD: Cell<bool> = const { Cell::new(false) };
    /// The rebuild under way: the database being scanned and the scan's cursor.
    static REBUILD: RefCell<Option<(i32, ScanCursor)>> = const { RefCell::new(None) };
}

/// The error the commands answer while the index is rebuilt.
pub const LOADING: &str = "LOADING the presence index is being rebuilt after a full sync";

/// True while the `loaded` notifications are for keys of a temporary database.
pub fn ignoring_loaded_keys() -> bool {
    SWAPDB_LOAD.with(Cell::get)
}

/// True while the index is being rebuilt.
pub fn in_progress() -> bool {
    REBUILD.with(|r| r.borrow().is_some())
}

/// A `swapdb` load started: its keys go to a temporary database.
pub fn load_started() {
    SWAPDB_LOAD.with(|s| s.set(true));
}

/// A `swapdb` load failed: the old data stays, and so does the index.
pub fn load_aborted() {
    SWAPDB_LOAD.with(|s| s.set(false));
}

/// A `swapdb` load completed and its data replaced the old: starts the rebuild.
pub fn load_completed() {
    SWAPDB_LOAD.with(|s| s.set(false));
    restart();
}

/// Empties the index and starts the rebuild from the first database (again, when one was under
/// way: a `SWAPDB` during a rebuild would mix the databases already scanned).
pub fn restart() {
    let _ = state::with(|s| s.clear());
    REBUILD.with(|r| *r.borrow_mut() = Some((0, ScanCursor::new())));
}

/// One slice of the rebuild, within `budget`; true when work is left.
pub fn step(ctx: &Context, budget: Duration) -> bool {
    let Some((mut db, cursor)) = REBUILD.with(|r| r.borrow_mut().take()) else {
        return false;
    };
    let started = Instant::now();
    let restore = store::SelectedDb::remember(ctx);
    let mut done = false;
    while started.elapsed() < budget {
        if !store::select_db(ctx, db) {
            done = true;
            break;
        }
        let mut found: Vec<Vec<u8>> = Vec::new();
        let more = cursor.step(ctx, &mut |name| {
            if keys::is_followed(name) {
                found.push(name.to_vec());
            }
        });
        for name in found {
            reconcile::reconcile(ctx, db, &name);
        }
        if !more {
            db += 1;
            cursor.restart();
        }
    }
    drop(restore);
    if !done && !in_progress() {
        REBUILD.with(|r| *r.borrow_mut() = Some((db, cursor)));
    }
    !done
}
