//! `presence`: a Redis module that keeps "who is in this room right now" in TTL keys
//! (`room:presence:<room>:<user>` = socket id), with atomic `PRESENCE.*` commands, a room index
//! derived from the keyspace, a sweeper, and force-leave events. This file only registers.

pub mod commands;
pub mod config;
pub mod core;
pub mod hooks;
pub mod info;
pub mod setup;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod sync;

use commands::Spec;
use redis_module::raw::{RedisModuleCtx as RawCtx, RedisModuleString as RawString};
use redis_module::{redis_module, Context, RedisString, Status};
use std::os::raw::c_int;

#[cfg(not(test))]
type ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const MODULE_ALLOCATOR: ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAllocator = std::alloc::System;
#[cfg(test)]
const MODULE_ALLOCATOR: ModuleAllocator = std::alloc::System;

/// PRESENCE.JOIN room user socket
extern "C" fn join(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    commands::dispatch(ctx, argv, argc, commands::join)
}

/// PRESENCE.BEAT room user socket
extern "C" fn beat(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    commands::dispatch(ctx, argv, argc, commands::beat)
}

/// PRESENCE.LEAVE room user socket
extern "C" fn leave(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    commands::dispatch(ctx, argv, argc, commands::leave)
}

/// PRESENCE.LIST room [WITHSOCKETS] [LIMIT n] [AFTER user]
extern "C" fn list(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    commands::dispatch(ctx, argv, argc, commands::list)
}

/// PRESENCE.COUNT room
extern "C" fn count(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    commands::dispatch(ctx, argv, argc, commands::count)
}

/// PRESENCE.SWEEP
extern "C" fn sweep(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    commands::dispatch(ctx, argv, argc, commands::sweep)
}

/// The commands: name, handler, flags, and the room argument as the key.
const COMMANDS: [Spec; 6] = [
    Spec {
        name: c"presence.join",
        handler: join,
        flags: c"write deny-oom fast",
        keys: (1, 1, 1),
    },
    Spec {
        name: c"presence.beat",
        handler: beat,
        flags: c"write fast",
        keys: (1, 1, 1),
    },
    Spec {
        name: c"presence.leave",
        handler: leave,
        flags: c"write fast",
        keys: (1, 1, 1),
    },
    Spec {
        name: c"presence.list",
        handler: list,
        flags: c"readonly",
        keys: (1, 1, 1),
    },
    Spec {
        name: c"presence.count",
        handler: count,
        flags: c"readonly fast",
        keys: (1, 1, 1),
    },
    Spec {
        name: c"presence.sweep",
        handler: sweep,
        flags: c"write",
        keys: (0, 0, 0),
    },
];

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    setup::init(ctx, args, &COMMANDS)
}

fn deinit(_ctx: &Context) -> Status {
    sweeper::stop();
    Status::Ok
}

redis_module! {
    name: "presence",
    version: 1,
    allocator: (ModuleAllocator, MODULE_ALLOCATOR),
    data_types: [],
    init: init,
    deinit: deinit,
}
