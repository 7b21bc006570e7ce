//! What happens when the module is loaded: module arguments, key format, INFO, server events,
//! the presences already in the keyspace, and the sweeper.

use crate::config;
use crate::hooks;
use crate::info;
use crate::registration::{self, Spec};
use crate::state;
use crate::store;
use crate::sweeper;
use presence_core::keys::KeyFormat;
use redis_module::{raw, Context, RedisString, Status};

/// True when the server exports every module API function the module calls. They are called
/// through `Option` function pointers; checking them once here is what makes those calls safe.
fn api_available() -> bool {
    // Reading the pointers is sound: `RedisModule_Init` filled them in at the start of OnLoad,
    // on the thread that runs this, and nothing writes them afterwards.
    unsafe {
        [
            { raw::RedisModule_CreateCommand }.is_some(),
            { raw::RedisModule_GetCommand }.is_some(),
            { raw::RedisModule_SetCommandInfo }.is_some(),
            { raw::RedisModule_RegisterInfoFunc }.is_some(),
            { raw::RedisModule_InfoAddSection }.is_some(),
            { raw::RedisModule_InfoAddFieldULongLong }.is_some(),
            { raw::RedisModule_PublishMessage }.is_some(),
            { raw::RedisModule_SubscribeToServerEvent }.is_some(),
            { raw::RedisModule_SubscribeToKeyspaceEvents }.is_some(),
            { raw::RedisModule_OpenKey }.is_some(),
            { raw::RedisModule_KeyType }.is_some(),
            { raw::RedisModule_GetAbsExpire }.is_some(),
            { raw::RedisModule_SetAbsExpire }.is_some(),
            { raw::RedisModule_StringDMA }.is_some(),
            { raw::RedisModule_StringSet }.is_some(),
            { raw::RedisModule_DeleteKey }.is_some(),
            { raw::RedisModule_CloseKey }.is_some(),
            { raw::RedisModule_GetSelectedDb }.is_some(),
            { raw::RedisModule_SelectDb }.is_some(),
            { raw::RedisModule_Milliseconds }.is_some(),
            { raw::RedisModule_GetContextFlags }.is_some(),
            { raw::RedisModule_GetDetachedThreadSafeContext }.is_some(),
            { raw::RedisModule_CreateTimer }.is_some(),
            { raw::RedisModule_StopTimer }.is_some(),
            { raw::RedisModule_GetNotifyKeyspaceEvents }.is_some(),
            { raw::RedisModule_NotifyKeyspaceEvent }.is_some(),
            { raw::RedisModule_Replicate }.is_some(),
            { raw::RedisModule_RegisterNumericConfig }.is_some(),
            { raw::RedisModule_LoadConfigs }.is_some(),
            { raw::RedisModule_SetModuleOptions }.is_some(),
            { raw::RedisModule_SignalModifiedKey }.is_some(),
            { raw::RedisModule_AvoidReplicaTraffic }.is_some(),
            { raw::RedisModule_FreeThreadSafeContext }.is_some(),
            { raw::RedisModule_ScanCursorCreate }.is_some(),
            { raw::RedisModule_ScanCursorRestart }.is_some(),
            { raw::RedisModule_ScanCursorDestroy }.is_some(),
            { raw::RedisModule_Scan }.is_some(),
        ]
    }
    .into_iter()
    .all(|present| present)
}

/// Called once by `RedisModule_OnLoad`: everything that can refuse the load (missing API,
/// refused configs or arguments, commands) comes first, then what Redis cannot take back if
/// the load failed later (keyspace and server event subscriptions). The sweeper's timer is not
/// armed here but at the first server cron: Redis may still unload the module after a
/// successful `OnLoad` (a `MODULE LOADEX` config it did not apply), and it refuses to unload a
/// module that holds a timer.
pub fn init(ctx: &Context, args: &[RedisString], commands: &[Spec]) -> Status {
    if !api_available() {
        ctx.log_warning("presence: this server lacks module API functions the module needs (Redis 7.0 or later is required)");
        return Status::Err;
    }
    state::reset();
    if !config::register_and_load(ctx) {
        ctx.log_warning("presence: a presence.* config was refused; the module is not loaded");
        return Status::Err;
    }
    let raw_args: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    match config::parse_module_args(&raw_args) {
        Ok(settings) => {
            for (setting, value) in settings {
                setting.store(value);
            }
        }
        Err(message) => {
            ctx.log_warning(&format!("presence: {message}"));
            return Status::Err;
        }
    }
    if !registration::register(ctx, commands) {
        ctx.log_warning("presence: could not register the commands");
        return Status::Err;
    }
    let format = if store::is_cluster(ctx) {
        KeyFormat::Cluster
    } else {
        KeyFormat::Standalone
    };
    let _ = state::with(|s| s.format = format);
    store::set_module_options(ctx);
    if !info::register(ctx)
        || !hooks::subscribe_keyspace_events(ctx)
        || !hooks::subscribe_server_events(ctx)
    {
        ctx.log_warning("presence: could not register INFO, keyspace or server events");
        return Status::Err;
    }
    hooks::index_existing_keys(ctx);
    sweeper::prepare(ctx);
    Status::Ok
}
