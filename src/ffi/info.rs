//! The module's `INFO` section: registration, and the trampoline that forwards a request for
//! it to [`Info::info`].

use super::ok;
use redis_module::{raw, Context};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

/// What the module writes in its `INFO` section.
pub trait Info {
    /// `INFO` asks for the module's section.
    fn info(section: &InfoSection);
}

/// The `INFO presence` section being written.
pub struct InfoSection {
    ctx: *mut raw::RedisModuleInfoCtx,
}

impl InfoSection {
    /// Adds the field `presence_<name>`.
    pub fn field(&self, name: &CStr, value: u64) {
        // SAFETY: the INFO context of the current callback and a C string. Redis refuses a
        // field only outside a section, which `info_requested` rules out.
        unsafe {
            call!(RedisModule_InfoAddFieldULongLong(
                self.ctx,
                name.as_ptr(),
                value
            ))
        };
    }
}

/// Registers `C::info` as the module's INFO callback; false when Redis refused.
pub fn register<C: Info>(ctx: &Context) -> bool {
    // SAFETY: the OnLoad context and a callback that lives for the program.
    ok(unsafe {
        call!(RedisModule_RegisterInfoFunc(
            ctx.ctx,
            Some(info_requested::<C>)
        ))
    })
}

extern "C" fn info_requested<C: Info>(ctx: *mut raw::RedisModuleInfoCtx, for_crash_report: c_int) {
    if for_crash_report != 0 {
        return;
    }
    // SAFETY: the INFO context of this callback; a null name adds the module's own section.
    // Redis refuses it when `INFO` did not ask for the section: then there is nothing to add.
    if ok(unsafe { call!(RedisModule_InfoAddSection(ctx, ptr::null_mut())) }) {
        C::info(&InfoSection { ctx });
    }
}
