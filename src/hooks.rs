//! The hooks that keep the room index and the node leases derived from the keyspace whatever
//! changes it: keyspace notifications (raw commands, expiry, eviction, RDB and AOF loading) and
//! server events (FLUSHDB/FLUSHALL, SWAPDB, loading).

use crate::api::{self, KeyName, ServerEvent};
use crate::cluster;
use crate::publisher;
use crate::rebuild;
use crate::reconcile;
use crate::state;
use crate::store;
use presence_core::events::{Event, Reason};
use presence_core::keys;
use redis_module::{Context, NotifyEvent};
use std::cell::Cell;

thread_local! {
    /// The database a `MOVE` started from: some servers (Valkey 8) run notification callbacks
    /// on the client that caused them and leave it in the event's database; it is selected
    /// again once `move_to` is handled.
    static ORIGIN_DB: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Subscribes to the keyspace notifications the index follows, and to the server events.
/// Notifications hand over the key as Redis's own string, which is opened as is.
///
/// Besides strings and generic commands, the classes of every command that can replace a
/// string with a value of another type: the `…STORE` commands of sets (`SUNIONSTORE`, …),
/// sorted sets and geo (`ZUNIONSTORE`, `ZRANGESTORE`, `GEOSEARCHSTORE`, …) and lists
/// (`SORT … STORE`), and module types. Hash and stream commands answer WRONGTYPE on a string
/// key and only create keys that are not presences, so their classes are left out: every
/// `HSET` or `XADD` on any key would pay for a callback. So are Redis 8's hash commands
/// (`HSETEX`, `HGETEX`, `HGETDEL`) and vector sets (`VADD`), for the same reason; a hash whose
/// last field expires or is taken goes with a generic `del`. The classes that only some servers
/// have (`n` new key, and Redis 8.2's `o` overwritten and `c` type changed) are left out too:
/// each key change they report also comes as the command's own event in a class above.
pub fn subscribe(ctx: &Context) -> bool {
    let classes = NotifyEvent::GENERIC
        | NotifyEvent::STRING
        | NotifyEvent::LIST
        | NotifyEvent::SET
        | NotifyEvent::ZSET
        | NotifyEvent::MODULE
        | NotifyEvent::EXPIRED
        | NotifyEvent::EVICTED
        | NotifyEvent::LOADED;
    api::subscribe_keyspace_events(ctx, classes) && api::subscribe_server_events(ctx)
}

/// Every keyspace notification the module listens to: `event` of the classes `kind` on `key`.
pub fn on_keyspace_event(ctx: &Context, kind: NotifyEvent, event: &[u8], key: KeyName<'_>) {
    if state::is_muted() {
        return;
    }
    let name = key.bytes();
    if !keys::is_followed(name) {
        return;
    }
    if event == b"loaded" && rebuild::ignoring_loaded_keys() {
        return;
    }
    let db = store::selected_db(ctx);
    let events = match event {
        // A key `MIGRATE` took to another node moved, it did not end: the index lets its
        // presence go without a word, and a lease keeps the node up here until it expires
        // (its owner writes another key here before then).
        b"del" if cluster::moving_out() => {
            if keys::parse_lease(name).is_none() {
                reconcile::forget(db, name, Reason::Deleted);
            }
            Vec::new()
        }
        b"del" | b"rename_from" | b"move_from" => reconcile::forget(db, name, Reason::Deleted),
        // `RESTORE` (and `RESTORE-ASKING`) still uses the key after its notification on Redis 8,
        // and reading a string value re-encodes it in place: the key is read once the command
        // is done. A key that moved here from another node of the cluster is then indexed
        // without a word.
        b"restore" if cluster::moving_in() => {
            reconcile::defer_arrival(ctx, db, name);
            Vec::new()
        }
        b"restore" => {
            reconcile::defer(ctx, db, name);
            Vec::new()
        }
        // Nobody asked: a node that may hold old data (just restarted, not yet confirmed the
        // owner of its slots) keeps its expiries to itself.
        b"expired" if !cluster::confirmed() => {
            reconcile::forget(db, name, Reason::Expired);
            Vec::new()
        }
        b"expired" => reconcile::forget(db, name, Reason::Expired),
        b"evicted" => reconcile::forget(db, name, Reason::Evicted),
        _ if kind.contains(NotifyEvent::STRING) => {
            reconcile::defer(ctx, db, name);
            Vec::new()
        }
        // The second event of every `SET … EX` and the event of a raw `EXPIRE`: the key comes
        // from the command's arguments and is opened as it is.
        b"expire" => {
            let arrived = reconcile::take_pending(db, name);
            unless(arrived, reconcile::reconcile_key(ctx, db, key))
        }
        // The rarer events get a copy of the name: an RDB load, for one, hands over a key name
        // that lives on its stack, which opening the key would try to retain. Among them, the
        // events of other types: a key that now holds a set, a sorted set, … is no presence.
        _ => {
            let arrived = reconcile::take_pending(db, name);
            unless(arrived, reconcile::reconcile(ctx, db, name))
        }
    };
    publisher::publish(ctx, events);
    match event {
        b"move_from" => ORIGIN_DB.with(|o| o.set(Some(db))),
        b"move_to" => restore_origin_db(ctx),
        _ => {}
    }
}

/// `events`, or none when `silent` (the first read of a key that moved here, see
/// [`reconcile::defer_arrival`]).
fn unless(silent: bool, events: Vec<Event>) -> Vec<Event> {
    if silent {
        Vec::new()
    } else {
        events
    }
}

/// Selects again the database saved in [`ORIGIN_DB`], if any.
fn restore_origin_db(ctx: &Context) {
    if let Some(db) = ORIGIN_DB.with(Cell::take) {
        store::select_db(ctx, db);
    }
}

/// A server event that changes the keyspace wholesale: a flush, `SWAPDB`, the end of a load.
pub fn on_server_event(ctx: &Context, event: ServerEvent) {
    let events = match event {
        // FLUSHDB / FLUSHALL (and the flush that starts a DEBUG RELOAD or a replica's full
        // sync).
        ServerEvent::Flush(db) => state::with(|s| s.flush(db)).unwrap_or_default(),
        // During a rebuild the databases scanned so far would be mixed up: start again.
        ServerEvent::SwapDb(..) if rebuild::in_progress() => {
            rebuild::restart();
            Vec::new()
        }
        ServerEvent::SwapDb(a, b) => state::with(|s| s.swap_dbs(a, b)).unwrap_or_default(),
        // Loading from RDB or AOF, or a replica's full sync: `reset` once it is done.
        // In a cluster the node must first be confirmed the owner of its slots: it says nothing.
        ServerEvent::LoadingEnded => {
            cluster::forget_health();
            reconcile::resolve_pending(ctx);
            let events = state::with(|s| s.loaded()).unwrap_or_default();
            if cluster::confirmed() {
                events
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    };
    publisher::publish(ctx, events);
}

/// Indexes the presence and lease keys a server already holds when the module is loaded into
/// it (`MODULE LOAD`/`LOADEX` at run time): one scan of every database, announcing nothing.
pub fn index_existing_keys(ctx: &Context) {
    let _restore = store::SelectedDb::remember(ctx);
    let mut db = 0;
    while store::select_db(ctx, db) {
        let mut found = Vec::new();
        let cursor = api::ScanCursor::new();
        while cursor.step(ctx, &mut |name| {
            if keys::is_followed(name) {
                found.push(name.to_vec());
            }
        }) {}
        for name in found {
            reconcile::reconcile(ctx, db, &name);
        }
        db += 1;
    }
}
