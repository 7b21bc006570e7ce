//! The context of a callback, the databases, the clocks and the module's load-time settings.

use super::ok;
use redis_module::Context;
use std::os::raw::c_int;

/// The selected database of the context.
pub fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: `ctx` is the live context Redis handed to the current callback.
    unsafe { call!(RedisModule_GetSelectedDb(ctx.ctx)) }
}

/// Selects `db` on the context; false when it does not exist.
pub fn select_db(ctx: &Context, db: i32) -> bool {
    // SAFETY: as above; Redis checks `db`.
    ok(unsafe { call!(RedisModule_SelectDb(ctx.ctx, db)) })
}

/// Redis's clock, in Unix ms.
pub fn now_ms() -> i64 {
    // SAFETY: takes no arguments.
    unsafe { call!(RedisModule_Milliseconds()) }
}

/// The context's flags (`REDISMODULE_CTX_FLAGS_*`).
pub fn flags(ctx: &Context) -> c_int {
    // SAFETY: `ctx` is the live context of the current callback.
    unsafe { call!(RedisModule_GetContextFlags(ctx.ctx)) }
}

/// True while clients' writes are paused (`CLIENT PAUSE WRITE` or `ALL`, a `FAILOVER`).
pub fn writes_paused() -> bool {
    // SAFETY: takes no arguments.
    unsafe { call!(RedisModule_AvoidReplicaTraffic()) != 0 }
}

/// Sets the module's options (`REDISMODULE_OPTION*`).
pub fn set_module_options(ctx: &Context, options: c_int) {
    // SAFETY: `ctx` is the OnLoad context. The function returns nothing.
    unsafe { call!(RedisModule_SetModuleOptions(ctx.ctx, options)) };
}

/// Applies the configs Redis holds for the module (`redis.conf`, `MODULE LOADEX … CONFIG`);
/// false when it refused one.
pub fn load_configs(ctx: &Context) -> bool {
    // SAFETY: `ctx` is the OnLoad context, after the configs were registered.
    ok(unsafe { call!(RedisModule_LoadConfigs(ctx.ctx)) })
}

/// The CPU time the calling thread has used, in µs, as the kernel counts it (0 when the
/// kernel cannot say).
pub fn thread_cpu_us() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return 0;
    }
    (now.tv_sec as u64).saturating_mul(1_000_000) + now.tv_nsec as u64 / 1000
}
