//! Keyspace notifications, server events and the command filter: subscriptions, and the
//! trampolines that forward each callback to [`Events`].

use super::keys::KeyName;
use super::ok;
use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

/// What the module does on the keyspace notifications, server events and client commands it
/// follows.
pub trait Events {
    /// A keyspace notification: `event` of the classes `kind` on `key`.
    fn keyspace_event(ctx: &Context, kind: NotifyEvent, event: &[u8], key: KeyName<'_>);
    /// A server event the module subscribed to.
    fn server_event(ctx: &Context, event: ServerEvent);
    /// A client command named `name` is about to run (the command filter).
    fn command_seen(name: &[u8]);
}

/// Subscribes `C::keyspace_event` to the keyspace notifications of `classes`.
pub fn subscribe_keyspace_events<C: Events>(ctx: &Context, classes: NotifyEvent) -> bool {
    // SAFETY: the OnLoad context and a callback that lives for the program.
    ok(unsafe {
        call!(RedisModule_SubscribeToKeyspaceEvents(
            ctx.ctx,
            classes.bits(),
            Some(keyspace_event::<C>)
        ))
    })
}

extern "C" fn keyspace_event<C: Events>(
    ctx: *mut raw::RedisModuleCtx,
    kind: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if !event.is_null() && !key.is_null() {
        // SAFETY: Redis passes the event's name as a C string valid for the call.
        let event = unsafe { CStr::from_ptr(event) }.to_bytes();
        C::keyspace_event(
            &Context::new(ctx),
            NotifyEvent::from_bits_truncate(kind),
            event,
            KeyName::handed_over(key),
        );
    }
    raw::REDISMODULE_OK as c_int
}

/// A server event the module follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// `FLUSHDB` of a database, or `FLUSHALL` (-1), about to happen.
    Flush(i32),
    /// `SWAPDB` of two databases.
    SwapDb(i32, i32),
    /// A load (RDB, AOF, a replica's full sync) ended.
    LoadingEnded,
    /// A replica's `repl-diskless-load swapdb` load started.
    SwapdbLoadStarted,
    /// That load failed: the old data stays.
    SwapdbLoadAborted,
    /// That load completed: its data replaced the old.
    SwapdbLoadCompleted,
    /// The server's cron ran.
    Cron,
}

/// Subscribes `C::server_event` to the server events of [`ServerEvent`]; false when Redis
/// refused.
pub fn subscribe_server_events<C: Events>(ctx: &Context) -> bool {
    [
        raw::REDISMODULE_EVENT_FLUSHDB,
        raw::REDISMODULE_EVENT_SWAPDB,
        raw::REDISMODULE_EVENT_LOADING,
        raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD,
        raw::REDISMODULE_EVENT_CRON_LOOP,
    ]
    .into_iter()
    .all(|id| {
        let event = raw::RedisModuleEvent { id, dataver: 1 };
        // SAFETY: the OnLoad context and a callback that lives for the program.
        ok(unsafe {
            call!(RedisModule_SubscribeToServerEvent(
                ctx.ctx,
                event,
                Some(server_event::<C>)
            ))
        })
    })
}

extern "C" fn server_event<C: Events>(
    ctx: *mut raw::RedisModuleCtx,
    event: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    if let Some(decoded) = decode(event.id, subevent, data) {
        C::server_event(&Context::new(ctx), decoded);
    }
}

/// The [`ServerEvent`] of a server event's id, subevent and data, if it is one.
fn decode(id: u64, subevent: u64, data: *mut c_void) -> Option<ServerEvent> {
    Some(match id {
        raw::REDISMODULE_EVENT_FLUSHDB
            if subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_START && !data.is_null() =>
        {
            // SAFETY: for this event Redis passes a `RedisModuleFlushInfoV1`.
            let info = unsafe { &*data.cast::<raw::RedisModuleFlushInfoV1>() };
            ServerEvent::Flush(info.dbnum)
        }
        raw::REDISMODULE_EVENT_SWAPDB if !data.is_null() => {
            // SAFETY: for this event Redis passes a `RedisModuleSwapDbInfoV1`.
            let info = unsafe { &*data.cast::<raw::RedisModuleSwapDbInfoV1>() };
            ServerEvent::SwapDb(info.dbnum_first, info.dbnum_second)
        }
        raw::REDISMODULE_EVENT_LOADING if subevent == raw::REDISMODULE_SUBEVENT_LOADING_ENDED => {
            ServerEvent::LoadingEnded
        }
        raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD => match subevent {
            raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_STARTED => ServerEvent::SwapdbLoadStarted,
            raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_ABORTED => ServerEvent::SwapdbLoadAborted,
            raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_COMPLETED => ServerEvent::SwapdbLoadCompleted,
            _ => return None,
        },
        raw::REDISMODULE_EVENT_CRON_LOOP => ServerEvent::Cron,
        _ => return None,
    })
}

/// Has `C::command_seen` see the name of every command a client runs (not the module's own
/// calls), before it runs; false when Redis refused.
pub fn register_command_filter<C: Events>(ctx: &Context) -> bool {
    // SAFETY: `ctx` is the OnLoad context; the callback is a plain function that lives as long
    // as the library. Redis returns null when it refuses.
    let filter = unsafe {
        call!(RedisModule_RegisterCommandFilter(
            ctx.ctx,
            Some(command_seen::<C>),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        ))
    };
    !filter.is_null()
}

extern "C" fn command_seen<C: Events>(filter: *mut raw::RedisModuleCommandFilterCtx) {
    // SAFETY: Redis passes a live filter context for the duration of the call; the argument it
    // hands back (null when out of range) is valid for as long.
    let name = unsafe {
        if call!(RedisModule_CommandFilterArgsCount(filter)) < 1 {
            return;
        }
        let arg = call!(RedisModule_CommandFilterArgGet(filter, 0));
        if arg.is_null() {
            return;
        }
        RedisString::string_as_slice(arg)
    };
    C::command_seen(name);
}
