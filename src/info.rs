//! The `INFO presence` section.

use crate::config;
use crate::rebuild;
use crate::state;
use redis_module::{raw, Context};
use std::ffi::CString;
use std::os::raw::c_int;

/// Registers [`on_info`] as the module's INFO callback.
pub fn register(ctx: &Context) -> bool {
    unsafe {
        raw::RedisModule_RegisterInfoFunc.unwrap()(ctx.ctx, Some(on_info))
            == raw::REDISMODULE_OK as c_int
    }
}

/// The figures of the section, summed over every database.
#[derive(Debug, Default)]
struct Figures {
    live: usize,
    indexed: usize,
    rooms: usize,
    backlog: usize,
    pending: usize,
}

extern "C" fn on_info(ctx: *mut raw::RedisModuleInfoCtx, for_crash_report: c_int) {
    if for_crash_report != 0 {
        return;
    }
    let Ok((figures, stats)) = state::with(|s| {
        let mut figures = Figures {
            pending: s.pending.len(),
            ..Figures::default()
        };
        for index in s.dbs.values_mut() {
            figures.live += index.live();
            figures.backlog += index.backlog();
            figures.indexed += index.entries();
            figures.rooms += index.rooms();
        }
        (figures, s.stats)
    }) else {
        return;
    };
    unsafe { raw::RedisModule_InfoAddSection.unwrap()(ctx, std::ptr::null_mut()) };
    let fields: [(&str, u64); 14] = [
        ("live", figures.live as u64),
        ("rooms", figures.rooms as u64),
        ("indexed", figures.indexed as u64),
        ("backlog", figures.backlog as u64),
        ("pending_raw_writes", figures.pending as u64),
        ("sweeps", stats.sweeps),
        ("swept", stats.swept),
        ("events", stats.events),
        ("sweep_tick_max_us", stats.max_tick_us),
        ("sweep_tick_max_cpu_us", stats.max_tick_cpu_us),
        ("sweep_ticks_slow", stats.slow_ticks),
        ("sweep_interval_ms", config::sweep_interval_ms() as u64),
        ("rebuilding", u64::from(rebuild::in_progress())),
        ("reentrant_calls", state::reentrant_calls()),
    ];
    for (name, value) in fields {
        if let Ok(name) = CString::new(name) {
            unsafe {
                raw::RedisModule_InfoAddFieldULongLong.unwrap()(ctx, name.as_ptr(), value);
            }
        }
    }
}
