//! What happens when the module is loaded: module arguments, key format, INFO, server events,
//! the presences already in the keyspace, and the sweeper.

use crate::config;
use crate::ffi;
use crate::ffi::events::{self, Events};
use crate::ffi::info::{self, Info};
use crate::ffi::registration::{self, Spec};
use crate::ffi::timer::Timer;
use crate::hooks;
use crate::state;
use crate::store;
use crate::sweeper;
use presence_core::keys::KeyFormat;
use redis_module::{Context, RedisString, Status};

/// Called once by `RedisModule_OnLoad`, with the module's commands and what Redis's callbacks
/// go to (`C`: what Redis calls the module for, besides its commands): everything that can refuse the load (missing API,
/// refused configs or arguments, commands) comes first, then what Redis cannot take back if
/// the load failed later (keyspace and server event subscriptions). The sweeper's timer is not
/// armed here but at the first server cron: Redis may still unload the module after a
/// successful `OnLoad` (a `MODULE LOADEX` config it did not apply), and it refuses to unload a
/// module that holds a timer.
pub fn init<C: Events + Info + Timer>(
    ctx: &Context,
    args: &[RedisString],
    commands: &[Spec],
) -> Status {
    if let Some(function) = ffi::missing() {
        ctx.log_warning(&format!("presence: this server lacks {function}, which the module needs (Redis 7.0 or later is required)"));
        return Status::Err;
    }
    state::reset();
    if !config::register_and_load(ctx, sweeper::rearm) {
        ctx.log_warning("presence: a presence.* config was refused; the module is not loaded");
        return Status::Err;
    }
    if !apply_module_args(ctx, args) {
        return Status::Err;
    }
    if !registration::register_commands(ctx, commands) {
        ctx.log_warning("presence: could not register the commands");
        return Status::Err;
    }
    let format = if store::is_cluster(ctx) {
        KeyFormat::Cluster
    } else {
        KeyFormat::Standalone
    };
    state::unless_busy(|s| s.format = format);
    config::set_cluster(format == KeyFormat::Cluster);
    if format == KeyFormat::Cluster && !events::register_command_filter::<C>(ctx) {
        ctx.log_warning("presence: could not register the command filter");
        return Status::Err;
    }
    store::set_module_options(ctx);
    if !info::register::<C>(ctx) || !hooks::subscribe::<C>(ctx) {
        ctx.log_warning("presence: could not register INFO, keyspace or server events");
        return Status::Err;
    }
    hooks::index_existing_keys(ctx);
    sweeper::prepare::<C>(ctx);
    Status::Ok
}

/// Applies the module arguments (`loadmodule … name value …`); false, logged, when one is
/// refused.
fn apply_module_args(ctx: &Context, args: &[RedisString]) -> bool {
    let raw_args: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    match config::parse_module_args(&raw_args) {
        Ok(settings) => {
            for (setting, value) in settings {
                setting.store(value);
            }
            true
        }
        Err(message) => {
            ctx.log_warning(&format!("presence: {message}"));
            false
        }
    }
}
