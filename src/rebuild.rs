//! Rebuilding the index from the keys, in bounded slices, after a replica swapped in a dataset
//! loaded with `repl-diskless-load swapdb`.
//!
//! During such a load Redis puts the keys into a temporary database while it keeps serving the
//! old one (async loading), and the `loaded` notification of each key selects the old one, so
//! the module cannot read what was loaded: the hooks ignore those notifications, and the old
//! index keeps answering for the old data. When the load completes and the new data is swapped
//! in, the index is emptied and rebuilt by a keyspace scan that the sweeper's timer runs in
//! slices of its tick budget, one database after the other, announcing nothing. Meanwhile
//! every `PRESENCE.*` command answers `LOADING`, and the sweeper sweeps nothing; keyspace
//! notifications keep updating the new index as usual.

use crate::ffi::context::select_db;
use crate::ffi::scan::ScanCursor;
use crate::reconcile::{self, Scanned};
use crate::state;
use crate::store;
use redis_module::Context;
use std::time::{Duration, Instant};

/// The error the commands answer while the index is rebuilt.
pub const LOADING: &str = "LOADING the presence index is being rebuilt after a full sync";

/// True while the `loaded` notifications are for keys of a temporary database.
pub fn ignoring_loaded_keys() -> bool {
    state::module(|m| m.swapdb_load.get())
}

/// True while the index is being rebuilt.
pub fn in_progress() -> bool {
    state::module(|m| m.rebuild.borrow().is_some())
}

/// A `swapdb` load started: its keys go to a temporary database.
pub fn load_started() {
    state::module(|m| m.swapdb_load.set(true));
}

/// A `swapdb` load failed: the old data stays, and so does the index.
pub fn load_aborted() {
    state::module(|m| m.swapdb_load.set(false));
}

/// A `swapdb` load completed and its data replaced the old: starts the rebuild.
pub fn load_completed() {
    state::module(|m| m.swapdb_load.set(false));
    restart();
}

/// Empties the index and starts the rebuild from the first database (again, when one was under
/// way: a `SWAPDB` during a rebuild would mix the databases already scanned).
pub fn restart() {
    state::unless_busy(|s| s.clear());
    state::module(|m| m.rebuild.replace(Some((0, ScanCursor::new()))));
}

/// One slice of the rebuild, within `budget`; true when work is left.
pub fn step(ctx: &Context, budget: Duration) -> bool {
    let Some((mut db, cursor)) = state::module(|m| m.rebuild.take()) else {
        return false;
    };
    let started = Instant::now();
    let restore = store::SelectedDb::remember(ctx);
    let mut done = false;
    while started.elapsed() < budget {
        if !select_db(ctx, db) {
            done = true;
            break;
        }
        if !reconcile::scan_step(ctx, db, &cursor, Scanned::Indexed) {
            db += 1;
            cursor.restart();
        }
    }
    drop(restore);
    if !done && !in_progress() {
        state::module(|m| m.rebuild.replace(Some((db, cursor))));
    }
    !done
}
