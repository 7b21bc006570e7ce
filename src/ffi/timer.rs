//! The module's timer: a detached context to arm it with outside a callback, and the
//! trampoline that forwards its firing to [`Timer::timer`].

use redis_module::{raw, Context};
use std::os::raw::c_void;
use std::ptr;

/// What the module does when its timer fires.
pub trait Timer {
    /// The timer armed with [`TimerContext::arm`] fired.
    fn timer(ctx: &Context);
}

/// The `extern "C"` function a timer calls.
type Fired = extern "C" fn(*mut raw::RedisModuleCtx, *mut c_void);

/// A context of the module's own, kept to arm the timer outside a callback.
pub struct TimerContext {
    ptr: *mut raw::RedisModuleCtx,
    fired: Fired,
}

/// An armed timer.
pub type TimerId = raw::RedisModuleTimerID;

impl TimerContext {
    /// A context detached from `ctx`, freed on drop, whose timers call `C::timer`.
    pub fn new<C: Timer>(ctx: &Context) -> TimerContext {
        TimerContext {
            // SAFETY: the live context of the current callback. Redis allocates the new
            // context (its allocator aborts rather than return null); it is freed on drop.
            ptr: unsafe { call!(RedisModule_GetDetachedThreadSafeContext(ctx.ctx)) },
            fired: timer_fired::<C>,
        }
    }

    /// Arms the timer to fire once after `delay_ms` (at least 1).
    pub fn arm(&self, delay_ms: i64) -> TimerId {
        // SAFETY: a live detached context; the callback takes no data.
        unsafe {
            call!(RedisModule_CreateTimer(
                self.ptr,
                delay_ms.max(1) as raw::mstime_t,
                Some(self.fired),
                ptr::null_mut()
            ))
        }
    }

    /// Stops a timer armed with this context (Redis ignores an id it does not know).
    pub fn stop(&self, id: TimerId) {
        // SAFETY: a live detached context; no data to take back.
        unsafe { call!(RedisModule_StopTimer(self.ptr, id, ptr::null_mut())) };
    }
}

impl Drop for TimerContext {
    fn drop(&mut self) {
        // SAFETY: the detached context, freed once, here.
        unsafe { call!(RedisModule_FreeThreadSafeContext(self.ptr)) };
    }
}

extern "C" fn timer_fired<C: Timer>(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    C::timer(&Context::new(ctx));
}
