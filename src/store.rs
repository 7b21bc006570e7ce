//! Presence, data and lease keys through Redis's key API, on top of [`crate::ffi`]: what an open key
//! holds, and the writes that replicate as their effects (`SET … PXAT`, `PEXPIREAT`, `DEL`) and
//! notify like the commands they stand for. The commands, the reconciliation and the sweeper
//! open the keys (`ffi::keys`); every write of a key goes through here. Also the context's
//! flags as the module reads them, and the guard that restores a context's selected database.

use crate::ffi::context::{self, select_db, selected_db};
use crate::ffi::keys::{self, Kind, OpenKey, WriteKey};
use crate::ffi::propagate;
use crate::state;
use presence_core::liveness::NO_TTL;
use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::ffi::CStr;
use std::os::raw::c_int;

/// What a key holds, as far as presence is concerned; the value is borrowed from the open key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed<'a> {
    /// No such key.
    Missing,
    /// A string key, with its value and absolute expiry (or [`NO_TTL`]).
    String {
        /// The value.
        value: &'a [u8],
        /// Absolute expiry in Unix ms, or [`NO_TTL`].
        expire_at: i64,
    },
    /// A key of another type.
    Other,
}

/// What the key holds.
pub fn observe(key: &OpenKey) -> Observed<'_> {
    match key.kind() {
        Kind::Empty => Observed::Missing,
        Kind::Other => Observed::Other,
        Kind::String => match key.value() {
            Some(value) => Observed::String {
                value,
                expire_at: expire_at(key),
            },
            None => Observed::Other,
        },
    }
}

/// The key's absolute expiry in Unix ms, or [`NO_TTL`].
pub fn expire_at(key: &OpenKey) -> i64 {
    key.expire_at().unwrap_or(NO_TTL)
}

/// Notifies keyspace subscribers as the raw command would, when `notify-keyspace-events`
/// enables the event's class (the module's own hooks ignore these).
fn notify(ctx: &Context, class: NotifyEvent, event: &CStr, name: &RedisString) {
    let enabled = keys::keyspace_events_enabled();
    if enabled & class.bits() == 0 {
        return;
    }
    if !state::muted(|| keys::notify_keyspace_event(ctx, class, event, name)) {
        refused(ctx, "a keyspace notification");
    }
}

/// What follows a write Redis took: the key signalled modified (WATCH), and its effect
/// replicated (`replicated`: whether Redis took that).
fn written(ctx: &Context, name: &RedisString, replicated: bool) {
    if !replicated {
        refused(ctx, "the replication of a write");
    }
    if !keys::signal_modified(ctx, name) {
        refused(ctx, "signalling a modified key");
    }
}

/// Logs that Redis refused `what` after a write (the write itself was done).
fn refused(ctx: &Context, what: &str) {
    ctx.log_warning(&format!("presence: Redis refused {what}"));
}

/// What `SET name value PXAT expire_at` does. When `value_unchanged`, the key already holds
/// `value` and only its expiry is written (the replicated effect is the same `SET`).
pub fn write_string(
    ctx: &Context,
    mut key: WriteKey,
    name: &RedisString,
    value: &[u8],
    expire_at: i64,
    value_unchanged: bool,
) -> bool {
    let done =
        (value_unchanged || key.set_value(&string(ctx, value))) && key.set_expire_at(expire_at);
    drop(key);
    if done {
        let at = Decimal::new(expire_at);
        let replicated = propagate::replicate_set_pxat(ctx, name, value, at.as_bytes());
        written(ctx, name, replicated);
        notify(ctx, NotifyEvent::STRING, c"set", name);
        notify(ctx, NotifyEvent::GENERIC, c"expire", name);
    }
    done
}

/// Moves the expiry: what `PEXPIREAT name expire_at` does.
pub fn refresh(ctx: &Context, mut key: WriteKey, name: &RedisString, expire_at: i64) -> bool {
    let done = key.set_expire_at(expire_at);
    drop(key);
    if done {
        let at = Decimal::new(expire_at);
        let replicated = propagate::replicate_pexpireat(ctx, name, at.as_bytes());
        written(ctx, name, replicated);
        notify(ctx, NotifyEvent::GENERIC, c"expire", name);
    }
    done
}

/// Deletes the key: what `DEL name` does.
pub fn delete(ctx: &Context, mut key: WriteKey, name: &RedisString) -> bool {
    let done = key.delete();
    drop(key);
    if done {
        let replicated = propagate::replicate_del(ctx, name);
        written(ctx, name, replicated);
        notify(ctx, NotifyEvent::GENERIC, c"del", name);
    }
    done
}

/// An `i64` written in decimal on the stack: replicated arguments passed as buffers cost Redis
/// less than its own number formatting.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

/// "00" to "99": two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl Decimal {
    fn new(value: i64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = value.unsigned_abs();
        while rest >= 10 {
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if rest > 0 || start == digits.len() {
            start -= 1;
            digits[start] = b'0' + rest as u8;
        }
        if value < 0 {
            start -= 1;
            digits[start] = b'-';
        }
        Decimal { digits, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// A Redis string holding `bytes` (any bytes: no C-string conversion).
pub fn string(ctx: &Context, bytes: &[u8]) -> RedisString {
    RedisString::create_from_slice(ctx.ctx, bytes)
}

/// The database a context had selected, selected again when the guard is dropped: code that
/// walks the databases on a client's or a timer's context leaves it as it found it.
pub struct SelectedDb<'a> {
    ctx: &'a Context,
    db: i32,
}

impl<'a> SelectedDb<'a> {
    /// Remembers the context's selected database.
    pub fn remember(ctx: &'a Context) -> SelectedDb<'a> {
        SelectedDb {
            ctx,
            db: selected_db(ctx),
        }
    }
}

impl Drop for SelectedDb<'_> {
    fn drop(&mut self) {
        if selected_db(self.ctx) != self.db {
            select_db(self.ctx, self.db);
        }
    }
}

/// True on a master that is not loading data: the only place that sweeps and publishes.
pub fn is_active_master(ctx: &Context) -> bool {
    let flags = context::flags(ctx);
    flags & raw::REDISMODULE_CTX_FLAGS_MASTER as c_int != 0
        && flags & raw::REDISMODULE_CTX_FLAGS_LOADING as c_int == 0
}

/// Tells Redis that the module signals modified keys itself (after each write), so that a key
/// opened for writing but left unchanged does not abort a `WATCH`; and that it handles a
/// replica's async loading (`repl-diskless-load swapdb`, see `rebuild.rs`).
pub fn set_module_options(ctx: &Context) {
    let options = raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED
        | raw::REDISMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD;
    context::set_module_options(ctx, options as c_int);
}

/// True when the server runs with `cluster-enabled yes`.
pub fn is_cluster(ctx: &Context) -> bool {
    context::flags(ctx) & raw::REDISMODULE_CTX_FLAGS_CLUSTER as c_int != 0
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn decimal_matches_display() {
        for value in [
            0,
            7,
            -7,
            10,
            99,
            100,
            -100,
            1_764_450_000_123,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(Decimal::new(value).as_bytes(), value.to_string().as_bytes());
        }
    }
}
