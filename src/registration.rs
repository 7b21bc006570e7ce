//! How a command is declared: name, handler, flags, its room argument as the key, and its
//! documentation. `api::register_commands` registers them with `RedisModule_CreateCommand`, then
//! `RedisModule_SetCommandInfo` so that `COMMAND DOCS`, `COMMAND INFO` and redis-cli's hints
//! describe them like any other command, and an ACL category `@presence` on servers that have
//! module categories (Redis 7.2, Valkey 8); Redis 7.0 has none and skips it.

use redis_module::raw;
use std::ffi::CStr;
use std::os::raw::c_int;

/// The raw handler of a command.
pub type RawHandler =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// How a command uses its room argument, the key it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKey {
    /// The command takes no room.
    None,
    /// The command reads the room's presences.
    Reads,
    /// The command writes a presence of the room.
    Writes,
}

/// The type of a documented argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// The command's key: the room id (the node id for `PRESENCE.LEASE`).
    Key,
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A token alone (a flag such as `WITHSOCKETS`).
    Token,
}

/// One documented argument.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// The argument's name, as redis-cli shows it.
    pub name: &'static CStr,
    /// Its type.
    pub kind: ArgType,
    /// The token that introduces it (`LIMIT`), if any.
    pub token: Option<&'static CStr>,
    /// True when it may be left out.
    pub optional: bool,
}

impl Arg {
    /// A required argument.
    pub const fn required(name: &'static CStr, kind: ArgType) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            optional: false,
        }
    }

    /// An optional argument introduced by `token`.
    pub const fn option(name: &'static CStr, kind: ArgType, token: &'static CStr) -> Arg {
        Arg {
            name,
            kind,
            token: Some(token),
            optional: true,
        }
    }
}

/// A command to register.
pub struct Spec {
    /// The command name.
    pub name: &'static CStr,
    /// The raw handler.
    pub handler: RawHandler,
    /// Redis command flags.
    pub flags: &'static CStr,
    /// How the command uses its room argument (the first argument when there is one).
    pub room: RoomKey,
    /// The number of arguments with the name, negative for "at least".
    pub arity: c_int,
    /// One line on what the command does.
    pub summary: &'static CStr,
    /// Its time complexity.
    pub complexity: &'static CStr,
    /// Its arguments after the name.
    pub args: &'static [Arg],
}
