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

use redis_module::configuration::ConfigurationFlags;
use redis_module::{redis_module, Context, RedisResult, RedisString, Status};

#[cfg(not(test))]
type ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const MODULE_ALLOCATOR: ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAllocator = std::alloc::System;
#[cfg(test)]
const MODULE_ALLOCATOR: ModuleAllocator = std::alloc::System;

/// PRESENCE.JOIN room user socket
fn join(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::join(ctx, args)
}

/// PRESENCE.BEAT room user socket
fn beat(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::beat(ctx, args)
}

/// PRESENCE.LEAVE room user socket
fn leave(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::leave(ctx, args)
}

/// PRESENCE.LIST room [WITHSOCKETS] [LIMIT n]
fn list(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::list(ctx, args)
}

/// PRESENCE.COUNT room
fn count(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::count(ctx, args)
}

/// PRESENCE.SWEEP
fn sweep(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::sweep(ctx, args)
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    setup::init(ctx, args)
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
    commands: [
        ["presence.join", join, "write deny-oom fast", 1, 1, 1, ""],
        ["presence.beat", beat, "write fast", 1, 1, 1, ""],
        ["presence.leave", leave, "write fast", 1, 1, 1, ""],
        ["presence.list", list, "readonly", 1, 1, 1, ""],
        ["presence.count", count, "readonly fast", 1, 1, 1, ""],
        ["presence.sweep", sweep, "write", 0, 0, 0, ""],
    ],
    event_handlers: [
        [@GENERIC @STRING @EXPIRED @EVICTED @LOADED: hooks::on_keyspace_event],
    ],
    configurations: [
        i64: [
            ["ttl", &config::TTL, config::DEFAULT_TTL, 1, config::MAX_SECONDS, ConfigurationFlags::IMMUTABLE, None],
            ["stale-after", &config::STALE_AFTER, config::DEFAULT_STALE_AFTER, 0, config::MAX_SECONDS, ConfigurationFlags::DEFAULT, None],
            ["sweep-interval", &config::SWEEP_INTERVAL, config::DEFAULT_SWEEP_INTERVAL, 1, config::MAX_SWEEP_INTERVAL, ConfigurationFlags::DEFAULT, Some(Box::new(|_, _, _| sweeper::rearm()))],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: false,
    ]
}
