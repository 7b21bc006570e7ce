//! Keeps the room index and the node leases in step with the keyspace: reads a presence key or
//! a lease key and applies what it holds (or forgets a key that is gone), and keeps the writes
//! waiting to be read; the end of a presence, counted. Used by the hooks, the commands, the
//! sweeper and the rebuild.

use crate::config;
use crate::data;
use crate::ffi::context::{select_db, selected_db};
use crate::ffi::keys::{KeyName, ReadKey};
use crate::ffi::scan::ScanCursor;
use crate::publisher;
use crate::state::{self, State};
use crate::store::{self, Observed};
use presence_core::changes::{self, PresenceRef};
use presence_core::db::Prior;
use presence_core::events::{Event, Reason};
use presence_core::ids;
use presence_core::keys;
use presence_core::liveness::{Moment, NO_TTL};
use redis_module::Context;

/// Past this many writes waiting to be read, they are read at once.
const MAX_PENDING: usize = 64;

/// Reads the key `name` in the selected database `db` and brings the index (or the leases) in
/// line with it. A key that is gone or no longer a presence string counts as deleted; a lease
/// key that is gone, has no TTL or is not a string is no lease.
pub fn reconcile(ctx: &Context, db: i32, name: &[u8]) -> Vec<Event> {
    let key_name = store::string(ctx, name);
    reconcile_key(ctx, db, (&key_name).into())
}

/// [`reconcile`] for a key name Redis handed over, read without a copy.
pub fn reconcile_key(ctx: &Context, db: i32, key: KeyName<'_>) -> Vec<Event> {
    read_key(ctx, db, key, false)
}

/// Reads the key `name` that a load brought into the selected database `db`, as [`reconcile`]
/// does, but sets a presence it holds aside for the index ([`presence_core::db::Db::stage`]):
/// [`index_staged`] indexes it, room by room, or the next change or read of its room does.
pub fn stage(ctx: &Context, db: i32, name: &[u8]) {
    let key_name = store::string(ctx, name);
    read_key(ctx, db, (&key_name).into(), true);
}

/// Indexes every presence set aside by [`stage`] or [`scan_step`] ([`Scanned::SetAside`]).
pub fn index_staged() {
    state::unless_busy(|s| s.index_staged());
}

/// Reads `key` of `db` into the index (or the leases); a presence it holds is set aside when
/// `staged`, announcing nothing.
fn read_key(ctx: &Context, db: i32, key: KeyName<'_>, staged: bool) -> Vec<Event> {
    let Some(format) = state::unless_busy(|s| Some(s.format)) else {
        return Vec::new();
    };
    if let Some(lease) = keys::parse_lease(key.bytes()) {
        let open = ReadKey::open(ctx, key);
        let expire_at = match store::observe(&open) {
            Observed::String { expire_at, .. } => expire_at,
            Observed::Missing | Observed::Other => NO_TTL,
        };
        state::unless_busy(|s| s.db(db).leases.set_lease(lease, expire_at));
        return Vec::new();
    }
    let Some((room, user)) = format.parse(key.bytes()) else {
        return Vec::new();
    };
    let at = PresenceRef { db, room, user };
    let open = ReadKey::open(ctx, key);
    let observed = store::observe(&open);
    state::unless_busy(|s| {
        let index = s.db(db);
        let socket = match &observed {
            Observed::String { value, expire_at } => {
                ids::parse_socket(value).map(|socket| (socket, *expire_at))
            }
            Observed::Missing | Observed::Other => None,
        };
        match socket {
            Some((socket, expire_at)) if staged => {
                index.stage(room, user, socket, expire_at);
                Vec::new()
            }
            Some((socket, expire_at)) => {
                let (events, _, previous) =
                    changes::observed(index, at, socket, expire_at, config::moment_now());
                if matches!(previous, Prior::Same { expire_at: before } if before != expire_at) {
                    index.data.follow(room, user);
                }
                events
            }
            None => changes::removed(index, at, Reason::Deleted, config::moment_now()),
        }
    })
}

/// The presence `at` ended for `reason` (its key deleted by the module when `deleted`): removes
/// it from the index, and counts a presence the module removed because its node's lease ended
/// (`presence_swept_node_down`). The events to announce.
pub fn ended(
    s: &mut State,
    at: PresenceRef<'_>,
    reason: Reason,
    deleted: bool,
    now: Moment,
) -> Vec<Event> {
    let Some(index) = s.dbs.get_mut(&at.db) else {
        return Vec::new();
    };
    if deleted && reason == Reason::NodeDown {
        s.stats.node_down += 1;
    }
    changes::removed(index, at, reason, now)
}

/// How [`scan_step`] takes the presences it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// Set aside as a load's ([`stage`]) for [`index_staged`]: for a scan that runs to its end
    /// in one call (`MODULE LOAD`).
    SetAside,
    /// Indexed at once: for a scan in slices while Redis serves clients (the rebuild), whose
    /// every slice must stay bounded.
    Indexed,
}

/// Scans a little of `db` (the context's selected database) with `cursor`, and reads every
/// presence and lease key it finds, announcing nothing: leases into the leases, presences as
/// `how` says; a data key is noted, to be checked at the next tick. False once the scan of
/// `db` is complete.
pub fn scan_step(ctx: &Context, db: i32, cursor: &ScanCursor, how: Scanned) -> bool {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let more = cursor.step(ctx, &mut |name| {
        if keys::is_followed(name) {
            found.push(name.to_vec());
        }
    });
    for name in found {
        if name.starts_with(keys::DATA_PREFIX) {
            data::observed(db, &name, false, false);
            continue;
        }
        match how {
            Scanned::SetAside => stage(ctx, db, &name),
            Scanned::Indexed => {
                reconcile(ctx, db, &name);
            }
        }
    }
    more
}

/// The key `name` of `db` is gone for `reason`: removes it from the index (or its lease)
/// without reading it.
pub fn forget(db: i32, name: &[u8], reason: Reason) -> Vec<Event> {
    unmark_arrival(db, name);
    let now = config::moment_now();
    state::unless_busy(|s| s.forget(db, name, reason, now))
}

/// Remembers a write to `name`, to be read once its command is done: a raw string write, or a
/// `RESTORE` (Redis 8 still reads the restored key after its notification, and reading a
/// string value re-encodes it: a new object in place of the one Redis holds).
pub fn defer(ctx: &Context, db: i32, name: &[u8]) {
    make_room(ctx, db, name);
    unmark_arrival(db, name);
    state::unless_busy(|s| s.defer(db, name));
}

/// [`defer`] for a key a `RESTORE-ASKING` brought here from another node of the cluster: it
/// moved, it did not change, so its first read indexes it without a word.
pub fn defer_arrival(ctx: &Context, db: i32, name: &[u8]) {
    make_room(ctx, db, name);
    let deferred = state::unless_busy(|s| {
        s.defer(db, name);
        true
    });
    if deferred {
        state::module(|m| {
            let mut arrived = m.arrived.borrow_mut();
            if !arrived.iter().any(|(d, key)| *d == db && key == name) {
                arrived.push((db, name.to_vec()));
            }
        });
    }
}

/// Reads the other waiting writes when there are too many, before `name` joins them: the key
/// of the command now running is never read in its notification.
fn make_room(ctx: &Context, db: i32, name: &[u8]) {
    let full = state::unless_busy(|s| {
        s.take_pending(db, name);
        s.pending.len() >= MAX_PENDING
    });
    if full {
        resolve_pending(ctx);
    }
}

/// Takes away the arrival mark of `name`; true when it had one.
fn unmark_arrival(db: i32, name: &[u8]) -> bool {
    state::module(|m| {
        let mut arrived = m.arrived.borrow_mut();
        let before = arrived.len();
        arrived.retain(|(d, key)| *d != db || key != name);
        arrived.len() != before
    })
}

/// Drops `name` from the waiting writes, to read it now; true when it waited as an arrival
/// (see [`defer_arrival`]): what that read finds is then announced to nobody.
pub fn take_pending(db: i32, name: &[u8]) -> bool {
    let waited = state::unless_busy(|s| s.take_pending(db, name));
    unmark_arrival(db, name) && waited
}

/// Reads every waiting write now, and publishes what changed (nothing for arrivals).
pub fn resolve_pending(ctx: &Context) {
    let Some(items) = state::unless_busy(|s| Some(std::mem::take(&mut s.pending))) else {
        return;
    };
    let arrived = state::module(|m| m.arrived.take());
    if items.is_empty() {
        return;
    }
    let _restore = store::SelectedDb::remember(ctx);
    let mut current = selected_db(ctx);
    for (db, name) in items {
        if db != current && select_db(ctx, db) {
            current = db;
        }
        if db == current {
            let events = reconcile(ctx, db, &name);
            if !arrived.iter().any(|(d, key)| *d == db && *key == name) {
                publisher::publish(ctx, events);
            }
        }
    }
}
