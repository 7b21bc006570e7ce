//! `presence`: a Redis module that keeps "who is in this room right now" in TTL keys
//! (`room:presence:<room>:<user>` = socket id), with atomic `PRESENCE.*` commands, a room index
//! derived from the keyspace, a sweeper, and force-leave events. This file only registers.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod api;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod hooks;
pub mod info;
pub mod publisher;
pub mod rebuild;
pub mod reconcile;
pub mod registration;
pub mod setup;
pub mod state;
pub mod store;
pub mod sweeper;

use redis_module::raw::{RedisModuleCtx as RawCtx, RedisModuleString as RawString};
use redis_module::{redis_module, Context, RedisString, Status};
use registration::{Arg, ArgType, RoomKey, Spec};
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
    api::command(ctx, argv, argc, commands::join)
}

/// PRESENCE.BEAT room user socket
extern "C" fn beat(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    api::command(ctx, argv, argc, commands::beat)
}

/// PRESENCE.LEAVE room user socket
extern "C" fn leave(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    api::command(ctx, argv, argc, commands::leave)
}

/// PRESENCE.LIST room [WITHSOCKETS] [LIMIT n] [AFTER user]
extern "C" fn list(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    api::command(ctx, argv, argc, commands::list)
}

/// PRESENCE.COUNT room
extern "C" fn count(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    api::command(ctx, argv, argc, commands::count)
}

/// PRESENCE.SWEEP
extern "C" fn sweep(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    api::command(ctx, argv, argc, commands::sweep)
}

/// PRESENCE.LEASE node ms
extern "C" fn lease(ctx: *mut RawCtx, argv: *mut *mut RawString, argc: c_int) -> c_int {
    api::command(ctx, argv, argc, commands::lease)
}

/// The commands: name, handler, flags, how the room argument (the declared key) is used, and
/// the documentation `COMMAND DOCS` shows.
const COMMANDS: [Spec; 7] = [
    Spec {
        name: c"presence.join",
        handler: join,
        flags: c"write deny-oom fast",
        room: RoomKey::Writes,
        arity: 4,
        summary: c"Sets room:presence:<room>:<user> to the socket with the presence TTL; another socket holding it is replaced. Replies with the room's live count.",
        complexity: c"O(1)",
        args: &TARGET_ARGS,
    },
    Spec {
        name: c"presence.beat",
        handler: beat,
        flags: c"write fast",
        room: RoomKey::Writes,
        arity: 4,
        summary: c"The heartbeat: resets the TTL of a live presence held by the socket. Replies 1, or 0 when the socket is not in the room.",
        complexity: c"O(1)",
        args: &TARGET_ARGS,
    },
    Spec {
        name: c"presence.leave",
        handler: leave,
        flags: c"write fast",
        room: RoomKey::Writes,
        arity: 4,
        summary: c"Deletes the presence when the socket holds it. Replies 1, or 0 when there was nothing to remove.",
        complexity: c"O(1)",
        args: &TARGET_ARGS,
    },
    Spec {
        name: c"presence.list",
        handler: list,
        flags: c"readonly",
        room: RoomKey::Reads,
        arity: -2,
        summary: c"Lists the live users of a room in user id order, optionally with their sockets, a page at a time with LIMIT and AFTER.",
        complexity: c"O(log N + M) for a page of M users, O(N) for the whole room of N",
        args: &[
            Arg::required(c"room", ArgType::Key),
            Arg::option(c"withsockets", ArgType::Token, c"WITHSOCKETS"),
            Arg::option(c"count", ArgType::Integer, c"LIMIT"),
            Arg::option(c"user", ArgType::String, c"AFTER"),
        ],
    },
    Spec {
        name: c"presence.count",
        handler: count,
        flags: c"readonly fast",
        room: RoomKey::Reads,
        arity: 2,
        summary: c"The number of live users in a room (the viewer count).",
        complexity: c"O(1)",
        args: &[Arg::required(c"room", ArgType::Key)],
    },
    Spec {
        name: c"presence.sweep",
        handler: sweep,
        flags: c"write",
        room: RoomKey::None,
        arity: 1,
        summary: c"Removes every presence that is not live now, as the sweeper's timer does. Replies with the number removed.",
        complexity: c"O(R) for R presences removed",
        args: &[],
    },
    Spec {
        name: c"presence.lease",
        handler: lease,
        flags: c"write fast",
        room: RoomKey::Writes,
        arity: 3,
        summary: c"Writes or renews the node's lease presence:node:<node> for ms milliseconds (0 releases it). Replies 1 when the node held a live lease, 0 when it did not.",
        complexity: c"O(1)",
        args: &[
            Arg::required(c"node", ArgType::Key),
            Arg::required(c"ms", ArgType::Integer),
        ],
    },
];

/// The arguments of JOIN, BEAT and LEAVE.
const TARGET_ARGS: [Arg; 3] = [
    Arg::required(c"room", ArgType::Key),
    Arg::required(c"user", ArgType::String),
    Arg::required(c"socket", ArgType::String),
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
