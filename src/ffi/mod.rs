//! The one layer that touches Redis through raw pointers: every `unsafe` block of the module
//! is in this folder, each with the reasoning that makes it sound
//! (`clippy::undocumented_unsafe_blocks` is denied for the crate). It imports nothing from the
//! rest of the crate: the module's code calls down into it, and Redis's callbacks reach the
//! module through the generic trampolines of [`replies`], [`events`], [`info`] and [`timer`],
//! each of which forwards to a trait of its file ([`replies::Commands`], [`events::Events`],
//! [`info::Info`], [`timer::Timer`]) that the top of the crate implements. The files of this
//! folder use this one (`ok`, the list of functions) and never the other way round.
//!
//! The module API functions the module calls are listed once, in `module_api!`: the list
//! makes [`missing`], which `OnLoad` checks before anything else (the load fails when the
//! server lacks one), and it is the only set of names `call!` accepts, so a function cannot be
//! called without being checked.

use redis_module::raw;
use std::os::raw::c_int;

/// Declares the module API functions the module calls: makes [`missing`] and the set of names
/// `call!` accepts.
macro_rules! module_api {
    (required: [$($name:ident),* $(,)?], optional: [$($optional:ident),* $(,)?] $(,)?) => {
        /// The first module API function the module calls that this server does not export.
        pub fn missing() -> Option<&'static str> {
            $(
                // SAFETY: `RedisModule_Init` filled these pointers in at the start of OnLoad,
                // on this thread, and nothing writes them afterwards: reading one is a copy.
                if unsafe { raw::$name }.is_none() {
                    return Some(stringify!($name));
                }
            )*
            None
        }

        /// One constant per declared function: `call!` names it, so that an undeclared
        /// function does not compile.
        #[allow(non_upper_case_globals, dead_code)]
        mod declared {
            $(pub(in crate::ffi) const $name: () = ();)*
            $(pub(in crate::ffi) const $optional: () = ();)*
        }
    };
}

/// Calls a declared module API function. Only inside an `unsafe` block, whose `SAFETY` comment
/// says why the arguments are valid; that the function exists was checked at load
/// ([`missing`]).
macro_rules! call {
    ($name:ident($($arg:expr),* $(,)?)) => {{
        let () = $crate::ffi::declared::$name;
        match redis_module::raw::$name {
            Some(function) => function($($arg),*),
            None => unreachable!("{} was checked at load", stringify!($name)),
        }
    }};
}

module_api! {
    required: [
    RedisModule_AvoidReplicaTraffic,
    RedisModule_CloseKey,
    RedisModule_CreateCommand,
    RedisModule_CreateTimer,
    RedisModule_DeleteKey,
    RedisModule_FreeThreadSafeContext,
    RedisModule_GetAbsExpire,
    RedisModule_GetCommand,
    RedisModule_GetContextFlags,
    RedisModule_GetDetachedThreadSafeContext,
    RedisModule_GetNotifyKeyspaceEvents,
    RedisModule_GetSelectedDb,
    RedisModule_InfoAddFieldULongLong,
    RedisModule_InfoAddSection,
    RedisModule_KeyType,
    RedisModule_LoadConfigs,
    RedisModule_Milliseconds,
    RedisModule_NotifyKeyspaceEvent,
    RedisModule_OpenKey,
    RedisModule_CommandFilterArgGet,
    RedisModule_CommandFilterArgsCount,
    RedisModule_PublishMessage,
    RedisModule_PublishMessageShard,
    RedisModule_RegisterCommandFilter,
    RedisModule_RegisterEnumConfig,
    RedisModule_RegisterInfoFunc,
    RedisModule_RegisterNumericConfig,
    RedisModule_Replicate,
    RedisModule_Scan,
    RedisModule_ScanCursorCreate,
    RedisModule_ScanCursorDestroy,
    RedisModule_ScanCursorRestart,
    RedisModule_SelectDb,
    RedisModule_SetAbsExpire,
    RedisModule_SetCommandInfo,
    RedisModule_SetModuleOptions,
    RedisModule_SignalModifiedKey,
    RedisModule_StopTimer,
    RedisModule_StringDMA,
    RedisModule_StringSet,
    RedisModule_StringTruncate,
    RedisModule_SubscribeToKeyspaceEvents,
    RedisModule_SubscribeToServerEvent,
    RedisModule_ValueLength,
    ],
    // Redis 7.2 and later, Valkey 8: called only after `has_acl_categories`.
    optional: [RedisModule_AddACLCategory, RedisModule_SetCommandACLCategories],
}

pub mod context;
pub mod events;
pub mod info;
pub mod keys;
pub mod propagate;
pub mod registration;
pub mod replies;
pub mod scan;
pub mod timer;

/// True when a module API function returned `REDISMODULE_OK`.
fn ok(status: c_int) -> bool {
    status == raw::REDISMODULE_OK as c_int
}
