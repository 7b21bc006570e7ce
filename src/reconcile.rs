//! Keeps the room index and the node leases in step with the keyspace: reads a presence key or
//! a lease key and applies what it holds (or forgets a key that is gone), and keeps the raw
//! writes waiting to be read. Used by the hooks, the commands, the sweeper and the rebuild.

use crate::config;
use crate::publisher;
use crate::state;
use crate::store::{self, KeyName, Observed, OpenKey};
use presence_core::changes::{self, PresenceRef};
use presence_core::events::{Event, Reason};
use presence_core::ids;
use presence_core::keys;
use presence_core::liveness::NO_TTL;
use redis_module::Context;

/// Past this many raw string writes waiting to be read, they are read at once.
const MAX_PENDING: usize = 64;

/// Reads the key `name` in the selected database `db` and brings the index (or the leases) in
/// line with it. A key that is gone or no longer a presence string counts as deleted; a lease
/// key that is gone, has no TTL or is not a string is no lease.
pub fn reconcile(ctx: &Context, db: i32, name: &[u8]) -> Vec<Event> {
    let key_name = store::string(ctx, name);
    reconcile_key(ctx, db, (&key_name).into())
}

/// [`reconcile`] for a key name Redis handed over, read without a copy.
pub(crate) fn reconcile_key(ctx: &Context, db: i32, key: KeyName<'_>) -> Vec<Event> {
    let Ok(format) = state::with(|s| s.format) else {
        return Vec::new();
    };
    if let Some(lease) = keys::parse_lease(key.bytes()) {
        let open = OpenKey::open(ctx, key, false);
        let expire_at = match store::observe(&open) {
            Observed::String { expire_at, .. } => expire_at,
            Observed::Missing | Observed::Other => NO_TTL,
        };
        let _ = state::with(|s| s.db(db).leases.set_lease(lease, expire_at));
        return Vec::new();
    }
    let Some((room, user)) = format.parse(key.bytes()) else {
        return Vec::new();
    };
    let at = PresenceRef { db, room, user };
    let open = OpenKey::open(ctx, key, false);
    let observed = store::observe(&open);
    let now = config::moment_now();
    state::with(|s| {
        let index = s.db(db);
        match &observed {
            Observed::String { value, expire_at } => match ids::parse_socket(value) {
                Some(socket) => changes::observed(index, at, socket, *expire_at, now).0,
                None => changes::removed(index, at, Reason::Deleted, now),
            },
            Observed::Missing | Observed::Other => {
                changes::removed(index, at, Reason::Deleted, now)
            }
        }
    })
    .unwrap_or_default()
}

/// The key `name` of `db` is gone for `reason`: removes it from the index (or its lease)
/// without reading it.
pub fn forget(db: i32, name: &[u8], reason: Reason) -> Vec<Event> {
    let now = config::moment_now();
    state::with(|s| s.forget(db, name, reason, now)).unwrap_or_default()
}

/// Remembers a raw string write to `name`, to be read once its command is done.
pub fn defer(ctx: &Context, db: i32, name: &[u8]) {
    let backlog = state::with(|s| s.defer(db, name));
    if backlog.unwrap_or(0) > MAX_PENDING {
        resolve_pending(ctx);
    }
}

/// Drops `name` from the deferred writes; true when it was there.
pub fn take_pending(db: i32, name: &[u8]) -> bool {
    state::with(|s| s.take_pending(db, name)).unwrap_or(false)
}

/// Reads every deferred raw write now, and publishes what changed.
pub fn resolve_pending(ctx: &Context) {
    let Ok(items) = state::with(|s| std::mem::take(&mut s.pending)) else {
        return;
    };
    if items.is_empty() {
        return;
    }
    let _restore = store::SelectedDb::remember(ctx);
    let mut current = store::selected_db(ctx);
    for (db, name) in items {
        if db != current && store::select_db(ctx, db) {
            current = db;
        }
        if db == current {
            let events = reconcile(ctx, db, &name);
            publisher::publish(ctx, events);
        }
    }
}
