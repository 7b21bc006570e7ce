//! How a command is declared (name, handler, flags, its room argument as the key, and its
//! documentation) and its registration: `RedisModule_CreateCommand`, then
//! `RedisModule_SetCommandInfo` so that `COMMAND DOCS`, `COMMAND INFO` and redis-cli's hints
//! describe it like any other command, and an ACL category `@presence` on servers that have
//! module categories (Redis 7.2, Valkey 8); Redis 7.0 has none and skips it.

use super::ok;
use redis_module::{raw, Context};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

/// The raw handler of a command.
pub type RawHandler = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *mut *mut raw::RedisModuleString,
    c_int,
) -> c_int;

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

/// True when the server has module ACL categories (Redis 7.2 and later, Valkey 8): the two
/// optional functions of `module_api!`.
fn has_acl_categories() -> bool {
    // SAFETY: as in `missing`: the pointers were filled in during OnLoad and are only read.
    unsafe {
        { raw::RedisModule_AddACLCategory }.is_some() && {
            raw::RedisModule_SetCommandACLCategories
        }
        .is_some()
    }
}

/// The ACL category every command joins, where the server has module categories.
const CATEGORY: &CStr = c"presence";

/// The module version the commands first appeared in.
const SINCE: &CStr = c"0.1.0";

/// The layout of the command info structures, as the module API wants it.
static INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
};

/// Registers `commands` with their documentation and, where the server has them, the
/// `@presence` ACL category; false when Redis refused one.
pub fn register_commands(ctx: &Context, commands: &[Spec]) -> bool {
    let categories = has_acl_categories()
        // SAFETY: the OnLoad context and a C string; the function exists (checked just above).
        && ok(unsafe { call!(RedisModule_AddACLCategory(ctx.ctx, CATEGORY.as_ptr())) });
    commands
        .iter()
        .all(|spec| create_command(ctx, spec) && describe_command(ctx, spec, categories))
}

fn create_command(ctx: &Context, spec: &Spec) -> bool {
    let (first, last) = if spec.room == RoomKey::None {
        (0, 0)
    } else {
        (1, 1)
    };
    // SAFETY: the OnLoad context, C strings that live for the program, and the command's
    // `extern "C"` function.
    ok(unsafe {
        call!(RedisModule_CreateCommand(
            ctx.ctx,
            spec.name.as_ptr(),
            Some(spec.handler),
            spec.flags.as_ptr(),
            first,
            last,
            first
        ))
    })
}

/// The key spec of the room argument: the first argument, one key.
fn room_key_spec(room: RoomKey) -> raw::RedisModuleCommandKeySpec {
    let flags = match room {
        RoomKey::Writes => raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE,
        _ => raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
    };
    // SAFETY: the key spec is plain data (pointers, integers and unions of integers), for which
    // all zeroes is valid; the fields that matter are set below.
    let mut spec: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
    spec.flags = u64::from(flags);
    spec.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    spec.bs.index.pos = 1;
    spec.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    spec.fk.range.lastkey = 0;
    spec.fk.range.keystep = 1;
    spec.fk.range.limit = 0;
    spec
}

fn raw_arg(arg: &Arg) -> raw::RedisModuleCommandArg {
    // SAFETY: as for the key spec: plain data, all zeroes is valid.
    let mut out: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
    out.name = arg.name.as_ptr();
    out.type_ = match arg.kind {
        ArgType::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
        ArgType::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
        ArgType::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
        ArgType::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
    };
    out.key_spec_index = if arg.kind == ArgType::Key { 0 } else { -1 };
    out.token = arg.token.map_or(ptr::null(), CStr::as_ptr);
    out.flags = if arg.optional {
        raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int
    } else {
        raw::REDISMODULE_CMD_ARG_NONE as c_int
    };
    out
}

/// Sets the command's documentation and, when `categories`, its ACL category.
fn describe_command(ctx: &Context, spec: &Spec, categories: bool) -> bool {
    // SAFETY: the OnLoad context and the name of a command just created; Redis returns null
    // for a name it does not know.
    let command = unsafe { call!(RedisModule_GetCommand(ctx.ctx, spec.name.as_ptr())) };
    if command.is_null() {
        return false;
    }
    set_info(command, spec)
        && (!categories
            // SAFETY: the same command and a C string; the function exists (checked).
            || ok(unsafe {
                call!(RedisModule_SetCommandACLCategories(
                    command,
                    CATEGORY.as_ptr()
                ))
            }))
}

/// Sets the documentation of `command` (`COMMAND DOCS`, `COMMAND INFO`) from `spec`.
fn set_info(command: *mut raw::RedisModuleCommand, spec: &Spec) -> bool {
    // Both arrays end with an all-zero entry, as the module API wants; Redis copies them.
    let mut key_specs = Vec::new();
    if spec.room != RoomKey::None {
        key_specs.push(room_key_spec(spec.room));
        // SAFETY: plain data, all zeroes is the terminator.
        key_specs.push(unsafe { std::mem::zeroed() });
    }
    let mut args: Vec<raw::RedisModuleCommandArg> = spec.args.iter().map(raw_arg).collect();
    if !args.is_empty() {
        // SAFETY: plain data, all zeroes is the terminator.
        args.push(unsafe { std::mem::zeroed() });
    }
    let info = raw::RedisModuleCommandInfo {
        version: &INFO_VERSION,
        summary: spec.summary.as_ptr(),
        complexity: spec.complexity.as_ptr(),
        since: SINCE.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: spec.arity,
        key_specs: if key_specs.is_empty() {
            ptr::null_mut()
        } else {
            key_specs.as_mut_ptr()
        },
        args: if args.is_empty() {
            ptr::null_mut()
        } else {
            args.as_mut_ptr()
        },
    };
    // SAFETY: a command of this module, and an info whose strings and arrays live until the
    // call returns (Redis copies them).
    ok(unsafe { call!(RedisModule_SetCommandInfo(command, &info)) })
}
