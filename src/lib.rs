//! `presence`: a Redis module that keeps "who is in this room right now" in TTL keys
//! (`room:presence:<room>:<user>` = socket id), with atomic `PRESENCE.*` commands, a room index
//! derived from the keyspace, a sweeper, and force-leave events.
//!
//! This file is the top of the crate, and only wires: the command table, and what each of
//! Redis's callbacks goes to ([`Presence`], which implements the traits of the trampolines in
//! [`ffi`]). The layers below it only point down (see
//! `docs/ARCHITECTURE.md`): the features (`commands`, `hooks`, `sweeper`, `rebuild`, `info`,
//! `setup`), then what they share (`reconcile`, `publisher`, `cluster`, `cpu`), then the module's
//! state, configs and key writes (`state`, `config`, `store`), and at the bottom [`ffi`], the
//! only code with `unsafe`.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cluster;
pub mod commands;
pub mod config;
pub mod cpu;
pub mod data;
pub mod ffi;
pub mod hooks;
pub mod info;
pub mod publisher;
pub mod rebuild;
pub mod reconcile;
pub mod setup;
pub mod state;
pub mod store;
pub mod sweeper;

use ffi::events::{Events, ServerEvent};
use ffi::info::{Info, InfoSection};
use ffi::keys::KeyName;
use ffi::registration::{Arg, ArgType, RoomKey, Spec};
use ffi::replies::{command, Command, Commands, Handler};
use ffi::timer::Timer;
use redis_module::{redis_module, Context, NotifyEvent, RedisResult, RedisString, Status};
use std::os::raw::c_int;
use std::time::Instant;

#[cfg(not(test))]
type ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const MODULE_ALLOCATOR: ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAllocator = std::alloc::System;
#[cfg(test)]
const MODULE_ALLOCATOR: ModuleAllocator = std::alloc::System;

/// Declares a type for each command, naming the handler its `extern "C"` function runs.
macro_rules! commands {
    ($($(#[$doc:meta])* $name:ident => $handler:path;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl Command for $name {
                const HANDLER: Handler = $handler;
            }
        )*
    };
}

commands! {
    /// PRESENCE.JOIN room user socket [DATA json]
    Join => commands::join;
    /// PRESENCE.UPDATE room user socket json
    Update => commands::update;
    /// PRESENCE.BEAT room user socket
    Beat => commands::beat;
    /// PRESENCE.LEAVE room user socket
    Leave => commands::leave;
    /// `PRESENCE.LIST room [WITHSOCKETS] [WITHDATA] [LIMIT n] [AFTER user]`
    List => commands::list;
    /// PRESENCE.COUNT room
    Count => commands::count;
    /// PRESENCE.SWEEP
    Sweep => commands::sweep;
    /// PRESENCE.LEASE node ms
    Lease => commands::lease;
}

/// The commands: name, handler, flags, how the room argument (the declared key) is used, and
/// the documentation `COMMAND DOCS` shows.
const COMMANDS: [Spec; 8] = [
    Spec {
        name: c"presence.join",
        handler: command::<Presence, Join>,
        flags: c"write deny-oom fast",
        room: RoomKey::Writes,
        arity: -4,
        summary: c"Sets room:presence:<room>:<user> to the socket with the presence TTL; another socket holding it is replaced. With DATA, writes room:presence-data:<room>:<user> (one JSON value, at most presence.max-data bytes) with the same expiry; without, removes it. Replies with the room's live count.",
        complexity: c"O(1)",
        args: &[
            Arg::required(c"room", ArgType::Key),
            Arg::required(c"user", ArgType::String),
            Arg::required(c"socket", ArgType::String),
            Arg::option(c"json", ArgType::String, c"DATA"),
        ],
    },
    Spec {
        name: c"presence.update",
        handler: command::<Presence, Update>,
        flags: c"write deny-oom fast",
        room: RoomKey::Writes,
        arity: 5,
        summary: c"Replaces the data (one JSON value) of a live presence held by the socket, keeping its expiry, and publishes update. Replies 1, or 0 when the socket is not in the room.",
        complexity: c"O(1)",
        args: &[
            Arg::required(c"room", ArgType::Key),
            Arg::required(c"user", ArgType::String),
            Arg::required(c"socket", ArgType::String),
            Arg::required(c"json", ArgType::String),
        ],
    },
    Spec {
        name: c"presence.beat",
        handler: command::<Presence, Beat>,
        flags: c"write fast",
        room: RoomKey::Writes,
        arity: 4,
        summary: c"The heartbeat: resets the TTL of a live presence held by the socket. Replies 1, or 0 when the socket is not in the room.",
        complexity: c"O(1)",
        args: &TARGET_ARGS,
    },
    Spec {
        name: c"presence.leave",
        handler: command::<Presence, Leave>,
        flags: c"write fast",
        room: RoomKey::Writes,
        arity: 4,
        summary: c"Deletes the presence when the socket holds it. Replies 1, or 0 when there was nothing to remove.",
        complexity: c"O(1)",
        args: &TARGET_ARGS,
    },
    Spec {
        name: c"presence.list",
        handler: command::<Presence, List>,
        flags: c"readonly",
        room: RoomKey::Reads,
        arity: -2,
        summary: c"Lists the live users of a room in user id order, optionally with their sockets and their data (or null), a page at a time with LIMIT and AFTER.",
        complexity: c"O(log N + M) for a page of M users, O(N) for the whole room of N",
        args: &[
            Arg::required(c"room", ArgType::Key),
            Arg::option(c"withsockets", ArgType::Token, c"WITHSOCKETS"),
            Arg::option(c"withdata", ArgType::Token, c"WITHDATA"),
            Arg::option(c"count", ArgType::Integer, c"LIMIT"),
            Arg::option(c"user", ArgType::String, c"AFTER"),
        ],
    },
    Spec {
        name: c"presence.count",
        handler: command::<Presence, Count>,
        flags: c"readonly fast",
        room: RoomKey::Reads,
        arity: 2,
        summary: c"The number of live users in a room (the viewer count).",
        complexity: c"O(1)",
        args: &[Arg::required(c"room", ArgType::Key)],
    },
    Spec {
        name: c"presence.sweep",
        handler: command::<Presence, Sweep>,
        flags: c"write",
        room: RoomKey::None,
        arity: 1,
        summary: c"Removes every presence that is not live now, as the sweeper's timer does. Replies with the number removed.",
        complexity: c"O(R) for R presences removed",
        args: &[],
    },
    Spec {
        name: c"presence.lease",
        handler: command::<Presence, Lease>,
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

/// The arguments of BEAT and LEAVE.
const TARGET_ARGS: [Arg; 3] = [
    Arg::required(c"room", ArgType::Key),
    Arg::required(c"user", ArgType::String),
    Arg::required(c"socket", ArgType::String),
];

/// What Redis's callbacks go to: the module.
pub struct Presence;

impl Commands for Presence {
    fn command(ctx: &Context, args: &[&[u8]], handler: Handler) -> RedisResult {
        commands::run(ctx, args, handler)
    }

    /// Notes the CPU time the command used (`cpu::note_command_cpu`).
    fn measure_command(command: impl FnOnce() -> c_int) -> c_int {
        let started = Instant::now();
        let mark = cpu::cpu_mark(started);
        let replied = command();
        cpu::note_command_cpu(started, mark);
        replied
    }
}

impl Events for Presence {
    fn keyspace_event(ctx: &Context, kind: NotifyEvent, event: &[u8], key: KeyName<'_>) {
        hooks::on_keyspace_event(ctx, kind, event, key);
    }

    fn server_event(ctx: &Context, event: ServerEvent) {
        match event {
            ServerEvent::Cron => sweeper::on_cron(),
            ServerEvent::SwapdbLoadStarted => rebuild::load_started(),
            ServerEvent::SwapdbLoadAborted => rebuild::load_aborted(),
            ServerEvent::SwapdbLoadCompleted => {
                rebuild::load_completed();
                sweeper::hurry();
            }
            other => hooks::on_server_event(ctx, other),
        }
    }

    fn command_seen(name: &[u8]) {
        cluster::command_seen(name);
    }
}

impl Timer for Presence {
    /// One tick of the sweeper, with its CPU time noted (`cpu::note_tick_cpu`).
    fn timer(ctx: &Context) {
        let started = Instant::now();
        let mark = cpu::cpu_mark(started);
        sweeper::on_tick(ctx);
        cpu::note_tick_cpu(started, mark);
    }
}

impl Info for Presence {
    fn info(section: &InfoSection) {
        info::on_info(section);
    }
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    setup::init::<Presence>(ctx, args, &COMMANDS)
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
