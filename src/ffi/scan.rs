//! The keyspace scan.

use redis_module::{raw, Context, RedisString};
use std::os::raw::c_void;

/// A keyspace scan that can go on across calls.
pub struct ScanCursor {
    ptr: *mut raw::RedisModuleScanCursor,
}

impl ScanCursor {
    /// A cursor at the start.
    pub fn new() -> ScanCursor {
        ScanCursor {
            // SAFETY: takes no arguments; Redis allocates the cursor (its allocator aborts
            // rather than return null) and it is destroyed on drop.
            ptr: unsafe { call!(RedisModule_ScanCursorCreate()) },
        }
    }

    /// Back to the start.
    pub fn restart(&self) {
        // SAFETY: a live cursor.
        unsafe { call!(RedisModule_ScanCursorRestart(self.ptr)) };
    }

    /// Scans a little of the context's selected database, calling `found` with each key name;
    /// false once the scan is complete.
    pub fn step(&self, ctx: &Context, found: &mut dyn FnMut(&[u8])) -> bool {
        let mut found = found;
        let data = (&mut found as *mut &mut dyn FnMut(&[u8])).cast::<c_void>();
        // SAFETY: the live context and cursor; `data` points at `found`, alive for the call,
        // and `scanned` reads it as that type.
        unsafe { call!(RedisModule_Scan(ctx.ctx, self.ptr, Some(scanned), data)) != 0 }
    }
}

impl Default for ScanCursor {
    fn default() -> Self {
        ScanCursor::new()
    }
}

impl Drop for ScanCursor {
    fn drop(&mut self) {
        // SAFETY: a live cursor, destroyed once, here.
        unsafe { call!(RedisModule_ScanCursorDestroy(self.ptr)) };
    }
}

extern "C" fn scanned(
    _ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
    _key: *mut raw::RedisModuleKey,
    data: *mut c_void,
) {
    if name.is_null() {
        return;
    }
    // SAFETY: `data` is the `&mut dyn FnMut` that `ScanCursor::step` passed for this scan.
    let found = unsafe { &mut *data.cast::<&mut dyn FnMut(&[u8])>() };
    found(RedisString::string_as_slice(name));
}
