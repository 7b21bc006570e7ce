//! The hooks that keep the room index and the node leases derived from the keyspace whatever
//! changes it: keyspace notifications (raw commands, expiry, eviction, RDB and AOF loading) and
//! server events (FLUSHDB/FLUSHALL, SWAPDB, loading).

use crate::cluster;
use crate::data;
use crate::ffi::context::{select_db, selected_db};
use crate::ffi::events::{self, Events, ServerEvent};
use crate::ffi::keys::KeyName;
use crate::ffi::scan::ScanCursor;
use crate::publisher;
use crate::rebuild;
use crate::reconcile::{self, Scanned};
use crate::state;
use crate::store;
use presence_core::events::{Event, Reason};
use presence_core::keys;
use redis_module::{Context, NotifyEvent};

/// Subscribes `C` to the keyspace notifications the index follows, and to the server events.
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
pub fn subscribe<C: Events>(ctx: &Context) -> bool {
    let classes = NotifyEvent::GENERIC
        | NotifyEvent::STRING
        | NotifyEvent::LIST
        | NotifyEvent::SET
        | NotifyEvent::ZSET
        | NotifyEvent::MODULE
        | NotifyEvent::EXPIRED
        | NotifyEvent::EVICTED
        | NotifyEvent::LOADED;
    events::subscribe_keyspace_events::<C>(ctx, classes)
        && events::subscribe_server_events::<C>(ctx)
}

/// Every keyspace notification the module listens to: `event` of the classes `kind` on `key`.
pub fn on_keyspace_event(ctx: &Context, kind: NotifyEvent, event: &[u8], key: KeyName<'_>) {
    if state::is_muted() {
        return;
    }
    let name = key.bytes();
    if !keys::is_followed(name) || (event == b"loaded" && rebuild::ignoring_loaded_keys()) {
        return;
    }
    let db = selected_db(ctx);
    if name.starts_with(keys::DATA_PREFIX) {
        // A data key is never read here: its presence's commands and the sweeper's next tick
        // deal with it (`data.rs`).
        let gone = matches!(
            event,
            b"del" | b"rename_from" | b"move_from" | b"expired" | b"evicted"
        );
        let moved_in = event == b"restore" && cluster::moving_in();
        data::observed(db, name, gone, moved_in);
        return;
    }
    let events = match event {
        b"del" | b"rename_from" | b"move_from" | b"expired" | b"evicted" => gone(db, name, event),
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
        _ if kind.contains(NotifyEvent::STRING) => {
            // A raw write of the value is a join without data: the data key goes at the next
            // tick, unless data is written for the presence before then.
            data::presence_written(db, name);
            reconcile::defer(ctx, db, name);
            Vec::new()
        }
        _ => changed(ctx, db, event, key),
    };
    publisher::publish(ctx, events);
    match event {
        b"move_from" => state::module(|m| m.origin_db.set(Some(db))),
        b"move_to" => restore_origin_db(ctx),
        _ => {}
    }
}

/// The key `name` of `db` is gone (`event`: deleted, renamed or moved away, expired, evicted):
/// the index forgets it without reading it. The events to announce.
fn gone(db: i32, name: &[u8], event: &[u8]) -> Vec<Event> {
    match event {
        // A key `MIGRATE` took to another node moved, it did not end: the index lets its
        // presence go without a word, and a lease keeps the node up here until it expires
        // (its owner writes another key here before then).
        b"del" if cluster::moving_out() => {
            if keys::parse_lease(name).is_none() {
                reconcile::forget(db, name, Reason::Deleted);
            }
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
        _ => reconcile::forget(db, name, Reason::Deleted),
    }
}

/// Any other event on `key`: it is read now (unless it waited as an arrival, see
/// [`reconcile::defer_arrival`], whose first read is announced to nobody).
fn changed(ctx: &Context, db: i32, event: &[u8], key: KeyName<'_>) -> Vec<Event> {
    if event == b"loaded" {
        // A load reads the key (its name lives on Redis's stack: a copy is opened) and sets
        // its presence aside, indexed with the rest of its room when the load ends.
        reconcile::stage(ctx, db, key.bytes());
        return Vec::new();
    }
    let arrived = reconcile::take_pending(db, key.bytes());
    let events = if event == b"expire" {
        // The second event of every `SET … EX` and the event of a raw `EXPIRE`: the key comes
        // from the command's arguments and is opened as it is.
        reconcile::reconcile_key(ctx, db, key)
    } else {
        // The rarer events get a copy of the name: an RDB load, for one, hands over a key name
        // that lives on its stack, which opening the key would try to retain. Among them, the
        // events of other types: a key that now holds a set, a sorted set, … is no presence.
        reconcile::reconcile(ctx, db, key.bytes())
    };
    if arrived {
        Vec::new()
    } else {
        events
    }
}

/// Selects again the database a `MOVE` started from, if any.
fn restore_origin_db(ctx: &Context) {
    if let Some(db) = state::module(|m| m.origin_db.take()) {
        select_db(ctx, db);
    }
}

/// A server event that changes the keyspace wholesale: a flush, `SWAPDB`, the end of a load.
pub fn on_server_event(ctx: &Context, event: ServerEvent) {
    let events = match event {
        // FLUSHDB / FLUSHALL (and the flush that starts a DEBUG RELOAD or a replica's full
        // sync).
        ServerEvent::Flush(db) => state::unless_busy(|s| s.flush(db)),
        // During a rebuild the databases scanned so far would be mixed up: start again.
        ServerEvent::SwapDb(..) if rebuild::in_progress() => {
            rebuild::restart();
            Vec::new()
        }
        ServerEvent::SwapDb(a, b) => state::unless_busy(|s| s.swap_dbs(a, b)),
        // Loading from RDB or AOF, or a replica's full sync: `reset` once it is done.
        // In a cluster the node must first be confirmed the owner of its slots: it says nothing.
        ServerEvent::LoadingEnded => {
            cluster::forget_health();
            reconcile::index_staged();
            reconcile::resolve_pending(ctx);
            let events = state::unless_busy(|s| s.loaded());
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
    while select_db(ctx, db) {
        let cursor = ScanCursor::new();
        while reconcile::scan_step(ctx, db, &cursor, Scanned::SetAside) {}
        db += 1;
    }
    reconcile::index_staged();
}
