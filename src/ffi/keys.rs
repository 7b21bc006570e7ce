//! Keys opened through the module API, and what Redis is told about a key the module changed
//! (`WATCH`, keyspace notifications).
//!
//! A key opened for reading ([`ReadKey`]) has no way to change it; one opened for writing
//! ([`WriteKey`]) changes it through `&mut self`, so a value borrowed from an open key cannot
//! outlive a write or a delete of it: this does not compile.
//!
//! ```compile_fail,E0502
//! # fn f(ctx: &redis_module::Context, name: &redis_module::RedisString) {
//! use redis_presence::ffi::keys::WriteKey;
//! let mut key = WriteKey::open(ctx, name);
//! let value = key.value();
//! key.delete();
//! let _ = value;
//! # }
//! ```
//!
//! What the types cannot see: a second handle on the same key, or a command run through
//! `Context::call`, changes the key behind a value borrowed from the first. The module reads a
//! value only to parse it at once (`store::observe`, then the core), with neither in between.

use super::ok;
use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::raw::c_int;

/// A key name Redis holds: one of the module's strings, or the name a keyspace notification
/// handed over (valid during that callback).
#[derive(Clone, Copy)]
pub struct KeyName<'a> {
    ptr: *mut raw::RedisModuleString,
    life: PhantomData<&'a ()>,
}

impl<'a> From<&'a RedisString> for KeyName<'a> {
    fn from(name: &'a RedisString) -> Self {
        KeyName {
            ptr: name.inner,
            life: PhantomData,
        }
    }
}

impl<'a> KeyName<'a> {
    /// The name a callback received, valid for `'a` (not null: checked by the caller).
    pub(super) fn handed_over(ptr: *mut raw::RedisModuleString) -> KeyName<'a> {
        KeyName {
            ptr,
            life: PhantomData,
        }
    }

    /// The name's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        RedisString::string_as_slice(self.ptr)
    }
}

/// The kind of an open key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No such key.
    Empty,
    /// A string.
    String,
    /// Another type.
    Other,
}

/// An open key, closed on drop: what reading and writing keys have in common. Opened as a
/// [`ReadKey`] or a [`WriteKey`], which dereference to it.
pub struct OpenKey {
    /// Null when Redis opened nothing (a missing key opened for reading).
    ptr: *mut raw::RedisModuleKey,
}

impl OpenKey {
    /// Opens `name` in the context's selected database with `mode`. Opening a logically
    /// expired key on a master deletes it and fires `expired` into the module's hooks: callers
    /// hold no state.
    fn open<'a>(ctx: &Context, name: impl Into<KeyName<'a>>, mode: c_int) -> OpenKey {
        // SAFETY: `ctx` is the live context of the current callback and the name a string
        // Redis holds for at least as long. Redis returns null for a missing key opened for
        // reading; every method checks for it.
        let ptr = unsafe { call!(RedisModule_OpenKey(ctx.ctx, name.into().ptr, mode)) };
        OpenKey { ptr: ptr.cast() }
    }

    /// The key's type.
    pub fn kind(&self) -> Kind {
        if self.ptr.is_null() {
            return Kind::Empty;
        }
        // SAFETY: `self.ptr` is an open key (not null), closed only on drop.
        let kind = unsafe { call!(RedisModule_KeyType(self.ptr)) };
        if kind == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            Kind::Empty
        } else if kind == raw::REDISMODULE_KEYTYPE_STRING as c_int {
            Kind::String
        } else {
            Kind::Other
        }
    }

    /// The key's absolute expiry in Unix ms; `None` when it has none (or there is no key).
    pub fn expire_at(&self) -> Option<i64> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: as above. Redis answers `REDISMODULE_NO_EXPIRE` for a key without one, or
        // for an empty key.
        let at = unsafe { call!(RedisModule_GetAbsExpire(self.ptr)) };
        (at != raw::REDISMODULE_NO_EXPIRE as i64).then_some(at)
    }

    /// The value of a string key, borrowed from the open key: a write or a delete through a
    /// [`WriteKey`] needs it back.
    pub fn value(&self) -> Option<&[u8]> {
        if self.ptr.is_null() {
            return None;
        }
        let mut len: usize = 0;
        // SAFETY: as above; `len` is a valid place for the length. Redis returns null when the
        // key is not a string.
        let data = unsafe {
            call!(RedisModule_StringDMA(
                self.ptr,
                &mut len,
                raw::KeyMode::READ.bits()
            ))
        };
        if data.is_null() {
            return None;
        }
        // SAFETY: Redis gives `len` readable bytes at `data`, valid while the key is open and
        // unchanged: the borrow of `self` keeps it open, and every change takes `&mut` of the
        // `WriteKey` this dereferences from.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }
}

impl Drop for OpenKey {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the key is open and closed once, here.
            unsafe { call!(RedisModule_CloseKey(self.ptr)) };
        }
    }
}

/// A key opened for reading only; a read does not count as an access (no LRU/LFU update).
pub struct ReadKey(OpenKey);

impl ReadKey {
    /// Opens `name` in the context's selected database for reading.
    pub fn open<'a>(ctx: &Context, name: impl Into<KeyName<'a>>) -> ReadKey {
        let mode = raw::KeyMode::READ.bits() | raw::REDISMODULE_OPEN_KEY_NOTOUCH as c_int;
        ReadKey(OpenKey::open(ctx, name, mode))
    }
}

impl Deref for ReadKey {
    type Target = OpenKey;

    fn deref(&self) -> &OpenKey {
        &self.0
    }
}

/// A key opened for writing: each change takes `&mut self`.
pub struct WriteKey(OpenKey);

impl WriteKey {
    /// Opens `name` in the context's selected database for writing (and reading).
    pub fn open<'a>(ctx: &Context, name: impl Into<KeyName<'a>>) -> WriteKey {
        let mode = raw::KeyMode::READ.bits() | raw::KeyMode::WRITE.bits();
        WriteKey(OpenKey::open(ctx, name, mode))
    }

    /// The open key, or `None` when Redis opened nothing.
    fn ptr(&mut self) -> Option<*mut raw::RedisModuleKey> {
        (!self.0.ptr.is_null()).then_some(self.0.ptr)
    }

    /// Sets the value (clearing any TTL, as `SET` does); false when Redis refused.
    pub fn set_value(&mut self, value: &RedisString) -> bool {
        self.ptr().is_some_and(|key| {
            // SAFETY: a key open for writing and a string the caller holds.
            ok(unsafe { call!(RedisModule_StringSet(key, value.inner)) })
        })
    }

    /// Writes `value` over the string the key holds, in place, when it is no longer than that
    /// string: the key keeps its entry and its expiry (no delete and add again, as
    /// [`WriteKey::set_value`] does). False, with nothing written, when the key is not a
    /// string, holds a shorter one (growing it in place would let Redis over-allocate), or Redis
    /// refused.
    pub fn overwrite_string(&mut self, value: &[u8]) -> bool {
        if self.kind() != Kind::String {
            return false;
        }
        let Some(key) = self.ptr() else {
            return false;
        };
        // SAFETY: a key open for writing, holding a string: its length.
        if unsafe { call!(RedisModule_ValueLength(key)) } < value.len() {
            return false;
        }
        // SAFETY: as above; truncating a string key to a length no greater than its own.
        if !ok(unsafe { call!(RedisModule_StringTruncate(key, value.len())) }) {
            return false;
        }
        let mut len: usize = 0;
        // SAFETY: as above; `len` is a valid place for the length. Redis returns the string's
        // bytes for writing, or null.
        let data = unsafe {
            call!(RedisModule_StringDMA(
                key,
                &mut len,
                raw::KeyMode::WRITE.bits()
            ))
        };
        if data.is_null() || len != value.len() {
            return false;
        }
        // SAFETY: Redis gives `len` writable bytes at `data`, valid while the key is open and
        // unchanged, which the `&mut self` of this call guarantees; `value` is `len` bytes of
        // another buffer (a command argument or the module's own), so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), data.cast::<u8>(), len) };
        true
    }

    /// Sets the absolute expiry; false when Redis refused (a missing key).
    pub fn set_expire_at(&mut self, expire_at: i64) -> bool {
        self.ptr().is_some_and(|key| {
            // SAFETY: a key open for writing.
            ok(unsafe { call!(RedisModule_SetAbsExpire(key, expire_at)) })
        })
    }

    /// Deletes the key; false when Redis refused.
    pub fn delete(&mut self) -> bool {
        self.ptr().is_some_and(|key| {
            // SAFETY: a key open for writing.
            ok(unsafe { call!(RedisModule_DeleteKey(key)) })
        })
    }
}

impl Deref for WriteKey {
    type Target = OpenKey;

    fn deref(&self) -> &OpenKey {
        &self.0
    }
}

/// Tells Redis that the key `name` changed (WATCH, client-side caching); false when Redis
/// refused.
pub fn signal_modified(ctx: &Context, name: &RedisString) -> bool {
    // SAFETY: the live context and a string the caller holds.
    ok(unsafe { call!(RedisModule_SignalModifiedKey(ctx.ctx, name.inner)) })
}

/// The classes of keyspace notifications `notify-keyspace-events` enables.
pub fn keyspace_events_enabled() -> c_int {
    // SAFETY: takes no arguments.
    unsafe { call!(RedisModule_GetNotifyKeyspaceEvents()) }
}

/// Sends the keyspace notification `event` of `class` for `name`; false when Redis refused.
pub fn notify_keyspace_event(
    ctx: &Context,
    class: NotifyEvent,
    event: &CStr,
    name: &RedisString,
) -> bool {
    // SAFETY: the live context, a C string and a Redis string the caller holds.
    ok(unsafe {
        call!(RedisModule_NotifyKeyspaceEvent(
            ctx.ctx,
            class.bits(),
            event.as_ptr(),
            name.inner
        ))
    })
}
