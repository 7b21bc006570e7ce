//! What happens when the module is loaded: module arguments, key format, INFO, server events,
//! the presences already in the keyspace, and the sweeper's timer.

use crate::config;
use crate::core::keys::KeyFormat;
use crate::hooks;
use crate::info;
use crate::state;
use crate::store;
use crate::sweeper;
use redis_module::{Context, RedisString, Status};

/// Called once by `RedisModule_OnLoad`, after the commands, hooks and configs are registered.
pub fn init(ctx: &Context, args: &[RedisString]) -> Status {
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
    let format = if store::is_cluster(ctx) {
        KeyFormat::Cluster
    } else {
        KeyFormat::Standalone
    };
    state::with(|s| s.format = format);
    if !info::register(ctx) || !hooks::subscribe_server_events(ctx) {
        ctx.log_warning("presence: could not register INFO or server events");
        return Status::Err;
    }
    hooks::index_existing_keys(ctx);
    sweeper::start(ctx);
    Status::Ok
}
