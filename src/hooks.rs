//! The hooks that keep the room index derived from the keyspace whatever changes it: keyspace
//! notifications (raw commands, expiry, eviction, RDB and AOF loading) and server events
//! (FLUSHDB/FLUSHALL, SWAPDB, loading).

use crate::publisher;
use crate::rebuild;
use crate::reconcile;
use crate::state;
use crate::store;
use presence_core::events::Reason;
use presence_core::keys::KeyFormat;
use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

thread_local! {
    /// The database a `MOVE` started from: some servers (Valkey 8) run notification callbacks
    /// on the client that caused them and leave it in the event's database; it is selected
    /// again once `move_to` is handled.
    static ORIGIN_DB: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Subscribes to the keyspace notifications the index follows. The raw API hands over the key
/// as Redis's own string, which is opened as is.
///
/// Besides strings and generic commands, the classes of every command that can replace a
/// string with a value of another type: the `…STORE` commands of sets (`SUNIONSTORE`, …),
/// sorted sets and geo (`ZUNIONSTORE`, `ZRANGESTORE`, `GEOSEARCHSTORE`, …) and lists
/// (`SORT … STORE`), and module types. Hash and stream commands answer WRONGTYPE on a string
/// key and only create keys that are not presences, so their classes are left out: every
/// `HSET` or `XADD` on any key would pay for a callback.
pub fn subscribe_keyspace_events(ctx: &Context) -> bool {
    let classes = NotifyEvent::GENERIC
        | NotifyEvent::STRING
        | NotifyEvent::LIST
        | NotifyEvent::SET
        | NotifyEvent::ZSET
        | NotifyEvent::MODULE
        | NotifyEvent::EXPIRED
        | NotifyEvent::EVICTED
        | NotifyEvent::LOADED;
    unsafe {
        raw::RedisModule_SubscribeToKeyspaceEvents.unwrap()(
            ctx.ctx,
            classes.bits(),
            Some(on_keyspace_event),
        ) == raw::REDISMODULE_OK as c_int
    }
}

/// Every keyspace notification the module listens to.
extern "C" fn on_keyspace_event(
    ctx: *mut raw::RedisModuleCtx,
    kind: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if event.is_null() || key.is_null() || state::is_muted() {
        return raw::REDISMODULE_OK as c_int;
    }
    let name = RedisString::string_as_slice(key);
    if !KeyFormat::has_prefix(name) {
        return raw::REDISMODULE_OK as c_int;
    }
    let event = unsafe { CStr::from_ptr(event) }.to_bytes();
    if event == b"loaded" && rebuild::ignoring_loaded_keys() {
        return raw::REDISMODULE_OK as c_int;
    }
    let ctx = Context::new(ctx);
    let db = store::selected_db(&ctx);
    let events = match event {
        b"del" | b"rename_from" | b"move_from" => reconcile::forget(db, name, Reason::Deleted),
        b"expired" => reconcile::forget(db, name, Reason::Expired),
        b"evicted" => reconcile::forget(db, name, Reason::Evicted),
        _ if NotifyEvent::from_bits_truncate(kind).contains(NotifyEvent::STRING) => {
            reconcile::defer(&ctx, db, name);
            Vec::new()
        }
        // The second event of every `SET … EX` and the event of a raw `EXPIRE`: the key comes
        // from the command's arguments and is opened as it is.
        b"expire" => {
            reconcile::take_pending(db, name);
            reconcile::reconcile_key(&ctx, db, key)
        }
        // The rarer events get a copy of the name: an RDB load, for one, hands over a key name
        // that lives on its stack, which opening the key would try to retain. Among them, the
        // events of other types: a key that now holds a set, a sorted set, … is no presence.
        _ => {
            reconcile::take_pending(db, name);
            reconcile::reconcile(&ctx, db, name)
        }
    };
    publisher::publish(&ctx, events);
    match event {
        b"move_from" => ORIGIN_DB.with(|o| o.set(Some(db))),
        b"move_to" => restore_origin_db(&ctx),
        _ => {}
    }
    raw::REDISMODULE_OK as c_int
}

/// Selects again the database saved in [`ORIGIN_DB`], if any.
fn restore_origin_db(ctx: &Context) {
    if let Some(db) = ORIGIN_DB.with(Cell::take) {
        store::select_db(ctx, db);
    }
}

/// Subscribes to the server events the index needs. The crate has no wrappers for SWAPDB, and
/// its flush wrapper drops the database number, so the raw API is used.
pub fn subscribe_server_events(ctx: &Context) -> bool {
    let subscriptions: [(u64, raw::RedisModuleEventCallback); 4] = [
        (raw::REDISMODULE_EVENT_FLUSHDB, Some(on_flush)),
        (raw::REDISMODULE_EVENT_SWAPDB, Some(on_swapdb)),
        (raw::REDISMODULE_EVENT_LOADING, Some(on_loading)),
        (raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD, Some(on_swapdb_load)),
    ];
    subscriptions.into_iter().all(|(id, callback)| {
        let event = raw::RedisModuleEvent { id, dataver: 1 };
        unsafe {
            raw::RedisModule_SubscribeToServerEvent.unwrap()(ctx.ctx, event, callback)
                == raw::REDISMODULE_OK as c_int
        }
    })
}

/// FLUSHDB / FLUSHALL (and the flush that starts a DEBUG RELOAD or a replica's full sync).
extern "C" fn on_flush(
    ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    if subevent != raw::REDISMODULE_SUBEVENT_FLUSHDB_START || data.is_null() {
        return;
    }
    let info = unsafe { &*(data as *const raw::RedisModuleFlushInfoV1) };
    let events = state::with(|s| s.flush(info.dbnum)).unwrap_or_default();
    publisher::publish(&Context::new(ctx), events);
}

/// SWAPDB: the two databases exchange their presences.
extern "C" fn on_swapdb(
    ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    _subevent: u64,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    let info = unsafe { &*(data as *const raw::RedisModuleSwapDbInfoV1) };
    let (a, b) = (info.dbnum_first, info.dbnum_second);
    if rebuild::in_progress() {
        rebuild::restart();
        return;
    }
    let events = state::with(|s| s.swap_dbs(a, b)).unwrap_or_default();
    publisher::publish(&Context::new(ctx), events);
}

/// A replica's full sync with `repl-diskless-load swapdb`: the data loads into a temporary
/// database, then replaces the old one (see [`rebuild`]).
extern "C" fn on_swapdb_load(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    match subevent {
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_STARTED => rebuild::load_started(),
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_ABORTED => rebuild::load_aborted(),
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_COMPLETED => rebuild::load_completed(),
        _ => {}
    }
}

/// Loading from RDB or AOF, or a replica's full sync: announces `reset` once it is done.
extern "C" fn on_loading(
    ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    if subevent != raw::REDISMODULE_SUBEVENT_LOADING_ENDED {
        return;
    }
    let ctx = Context::new(ctx);
    reconcile::resolve_pending(&ctx);
    let events = state::with(|s| s.loaded()).unwrap_or_default();
    publisher::publish(&ctx, events);
}

/// Indexes the presence keys a server already holds when the module is loaded into it
/// (`MODULE LOAD`/`LOADEX` at run time): one scan of every database, announcing nothing.
pub fn index_existing_keys(ctx: &Context) {
    let _restore = store::SelectedDb::remember(ctx);
    let mut db = 0;
    while store::select_db(ctx, db) {
        let found = std::cell::RefCell::new(Vec::new());
        let cursor = redis_module::KeysCursor::new();
        while cursor.scan(ctx, &|_ctx: &Context, name: &RedisString, _key| {
            if KeyFormat::has_prefix(name.as_slice()) {
                found.borrow_mut().push(name.as_slice().to_vec());
            }
        }) {}
        for name in found.into_inner() {
            reconcile::reconcile(ctx, db, &name);
        }
        db += 1;
    }
}
