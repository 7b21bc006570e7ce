//! The one place that touches Redis through raw pointers: small safe functions over the module
//! API, the `extern "C"` entry points Redis calls (commands, keyspace notifications, server
//! events, the timer, the keyspace scan, `INFO`), each with the reasoning that makes its
//! `unsafe` sound. No other file of the module has an `unsafe` block
//! (`clippy::undocumented_unsafe_blocks` is denied for the crate).
//!
//! The module API functions the module calls are listed once, in [`module_api!`]: the list
//! makes [`missing`], which `OnLoad` checks before anything else (the load fails when the
//! server lacks one), and it is the only set of names [`call!`] accepts, so a function cannot be
//! called without being checked.

use crate::commands::Handler;
use crate::registration::{Arg, ArgType, RoomKey, Spec};
use crate::{hooks, info, rebuild, state, sweeper};
use presence_core::liveness::NO_TTL;
use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::cell::Cell;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::ptr;
use std::time::{Duration, Instant};

/// Declares the module API functions the module calls: makes [`missing`] and the set of names
/// [`call!`] accepts.
macro_rules! module_api {
    (required: [$($name:ident),* $(,)?], optional: [$($optional:ident),* $(,)?] $(,)?) => {
        /// The first module API function the module calls that this server does not export.
        pub fn missing() -> Option<&'static str> {
            $(
                // SAFETY: `RedisModule_Init` filled these pointers in at the start of OnLoad,
                // on this thread, and nothing writes them afterwards: reading one is a copy.
                if unsafe { raw::$name }.is_none() {
                    return Some(stringify!($name));
                }
            )*
            None
        }

        /// One constant per declared function: [`call!`] names it, so that an undeclared
        /// function does not compile.
        #[allow(non_upper_case_globals, dead_code)]
        mod declared {
            $(pub(super) const $name: () = ();)*
            $(pub(super) const $optional: () = ();)*
        }
    };
}

/// Calls a declared module API function. Only inside an `unsafe` block, whose `SAFETY` comment
/// says why the arguments are valid; that the function exists was checked at load
/// ([`missing`]).
macro_rules! call {
    ($name:ident($($arg:expr),* $(,)?)) => {{
        let () = declared::$name;
        match raw::$name {
            Some(function) => function($($arg),*),
            None => unreachable!("{} was checked at load", stringify!($name)),
        }
    }};
}

module_api! {
    required: [
    RedisModule_AvoidReplicaTraffic,
    RedisModule_CloseKey,
    RedisModule_CreateCommand,
    RedisModule_CreateTimer,
    RedisModule_DeleteKey,
    RedisModule_FreeThreadSafeContext,
    RedisModule_GetAbsExpire,
    RedisModule_GetCommand,
    RedisModule_GetContextFlags,
    RedisModule_GetDetachedThreadSafeContext,
    RedisModule_GetNotifyKeyspaceEvents,
    RedisModule_GetSelectedDb,
    RedisModule_InfoAddFieldULongLong,
    RedisModule_InfoAddSection,
    RedisModule_KeyType,
    RedisModule_LoadConfigs,
    RedisModule_Milliseconds,
    RedisModule_NotifyKeyspaceEvent,
    RedisModule_OpenKey,
    RedisModule_CommandFilterArgGet,
    RedisModule_CommandFilterArgsCount,
    RedisModule_PublishMessage,
    RedisModule_PublishMessageShard,
    RedisModule_RegisterCommandFilter,
    RedisModule_RegisterEnumConfig,
    RedisModule_RegisterInfoFunc,
    RedisModule_RegisterNumericConfig,
    RedisModule_Replicate,
    RedisModule_Scan,
    RedisModule_ScanCursorCreate,
    RedisModule_ScanCursorDestroy,
    RedisModule_ScanCursorRestart,
    RedisModule_SelectDb,
    RedisModule_SetAbsExpire,
    RedisModule_SetCommandInfo,
    RedisModule_SetModuleOptions,
    RedisModule_SignalModifiedKey,
    RedisModule_StopTimer,
    RedisModule_StringDMA,
    RedisModule_StringSet,
    RedisModule_SubscribeToKeyspaceEvents,
    RedisModule_SubscribeToServerEvent,
    ],
    // Redis 7.2 and later, Valkey 8: called only after `has_acl_categories`.
    optional: [RedisModule_AddACLCategory, RedisModule_SetCommandACLCategories],
}

/// True when the server has module ACL categories (Redis 7.2 and later, Valkey 8): the two
/// optional functions of [`module_api!`].
fn has_acl_categories() -> bool {
    // SAFETY: as in `missing`: the pointers were filled in during OnLoad and are only read.
    unsafe {
        { raw::RedisModule_AddACLCategory }.is_some() && {
            raw::RedisModule_SetCommandACLCategories
        }
        .is_some()
    }
}

fn ok(status: c_int) -> bool {
    status == raw::REDISMODULE_OK as c_int
}

// --- contexts and databases ------------------------------------------------------------------

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
pub fn context_flags(ctx: &Context) -> c_int {
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
    // SAFETY: `ctx` is the OnLoad context.
    unsafe { call!(RedisModule_SetModuleOptions(ctx.ctx, options)) };
}

/// Applies the configs Redis holds for the module (`redis.conf`, `MODULE LOADEX … CONFIG`);
/// false when it refused one.
pub fn load_configs(ctx: &Context) -> bool {
    // SAFETY: `ctx` is the OnLoad context, after the configs were registered.
    ok(unsafe { call!(RedisModule_LoadConfigs(ctx.ctx)) })
}

/// The CPU time the calling thread has used, in µs, as the kernel counts it.
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

// --- keys ----------------------------------------------------------------------------------------

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

/// An open key, closed on drop.
pub struct Key {
    ptr: *mut raw::RedisModuleKey,
}

impl Key {
    /// Opens `name` in the context's selected database, for writing or for reading (a read
    /// does not count as an access: no LRU/LFU update). Opening a logically expired key on a
    /// master deletes it and fires `expired` into the module's hooks: callers hold no state.
    pub fn open<'a>(ctx: &Context, name: impl Into<KeyName<'a>>, write: bool) -> Key {
        let mode = if write {
            raw::KeyMode::READ.bits() | raw::KeyMode::WRITE.bits()
        } else {
            raw::KeyMode::READ.bits() | raw::REDISMODULE_OPEN_KEY_NOTOUCH as c_int
        };
        // SAFETY: `ctx` is the live context of the current callback and the name a string
        // Redis holds for at least as long.
        let ptr = unsafe { call!(RedisModule_OpenKey(ctx.ctx, name.into().ptr, mode)) };
        Key { ptr: ptr.cast() }
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

    /// The key's absolute expiry in Unix ms, or [`NO_TTL`].
    pub fn expire_at(&self) -> i64 {
        if self.ptr.is_null() {
            return NO_TTL;
        }
        // SAFETY: as above.
        let at = unsafe { call!(RedisModule_GetAbsExpire(self.ptr)) };
        if at == raw::REDISMODULE_NO_EXPIRE as i64 {
            NO_TTL
        } else {
            at
        }
    }

    /// The value of a string key, valid while the key stays open and unchanged.
    pub fn value(&self) -> Option<&[u8]> {
        if self.ptr.is_null() {
            return None;
        }
        let mut len: usize = 0;
        // SAFETY: as above; `len` is a valid place for the length.
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
        // unchanged, which the borrow of `self` ensures.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }

    /// Sets the value (clearing any TTL, as `SET` does).
    pub fn set_value(&self, value: &RedisString) -> bool {
        // SAFETY: an open key (writing mode is the caller's choice: Redis refuses otherwise)
        // and a string the caller holds.
        ok(unsafe { call!(RedisModule_StringSet(self.ptr, value.inner)) })
    }

    /// Sets the absolute expiry.
    pub fn set_expire_at(&self, expire_at: i64) -> bool {
        // SAFETY: as above.
        ok(unsafe { call!(RedisModule_SetAbsExpire(self.ptr, expire_at)) })
    }

    /// Deletes the key.
    pub fn delete(&self) -> bool {
        // SAFETY: as above.
        ok(unsafe { call!(RedisModule_DeleteKey(self.ptr)) })
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the key is open and closed once, here.
            unsafe { call!(RedisModule_CloseKey(self.ptr)) };
        }
    }
}

/// Tells Redis that the key `name` changed (WATCH, client-side caching).
pub fn signal_modified(ctx: &Context, name: &RedisString) {
    // SAFETY: the live context and a string the caller holds.
    unsafe { call!(RedisModule_SignalModifiedKey(ctx.ctx, name.inner)) };
}

/// The classes of keyspace notifications `notify-keyspace-events` enables.
pub fn keyspace_events_enabled() -> c_int {
    // SAFETY: takes no arguments.
    unsafe { call!(RedisModule_GetNotifyKeyspaceEvents()) }
}

/// Sends the keyspace notification `event` of `class` for `name`.
pub fn notify_keyspace_event(ctx: &Context, class: NotifyEvent, event: &CStr, name: &RedisString) {
    // SAFETY: the live context, a C string and a Redis string the caller holds.
    unsafe {
        call!(RedisModule_NotifyKeyspaceEvent(
            ctx.ctx,
            class.bits(),
            event.as_ptr(),
            name.inner
        ))
    };
}

/// Replicates `SET name socket PXAT at` (`at` in decimal).
pub fn replicate_set_pxat(ctx: &Context, name: &RedisString, socket: &[u8], at: &[u8]) {
    // SAFETY: the format `sbcb` matches the arguments: a Redis string, a buffer and its
    // length, a C string, a buffer and its length; each valid for the call.
    unsafe {
        call!(RedisModule_Replicate(
            ctx.ctx,
            c"SET".as_ptr(),
            c"sbcb".as_ptr(),
            name.inner,
            socket.as_ptr().cast::<c_char>(),
            socket.len(),
            c"PXAT".as_ptr(),
            at.as_ptr().cast::<c_char>(),
            at.len()
        ))
    };
}

/// Replicates `PEXPIREAT name at` (`at` in decimal).
pub fn replicate_pexpireat(ctx: &Context, name: &RedisString, at: &[u8]) {
    // SAFETY: the format `sb` matches: a Redis string, a buffer and its length.
    unsafe {
        call!(RedisModule_Replicate(
            ctx.ctx,
            c"PEXPIREAT".as_ptr(),
            c"sb".as_ptr(),
            name.inner,
            at.as_ptr().cast::<c_char>(),
            at.len()
        ))
    };
}

/// Replicates `DEL name`.
pub fn replicate_del(ctx: &Context, name: &RedisString) {
    // SAFETY: the format `s` matches: one Redis string.
    unsafe {
        call!(RedisModule_Replicate(
            ctx.ctx,
            c"DEL".as_ptr(),
            c"s".as_ptr(),
            name.inner
        ))
    };
}

/// Publishes `message` on `channel`.
pub fn publish(ctx: &Context, channel: &RedisString, message: &RedisString) {
    // SAFETY: the live context and two strings the caller holds.
    unsafe {
        call!(RedisModule_PublishMessage(
            ctx.ctx,
            channel.inner,
            message.inner
        ))
    };
}

/// Publishes `message` on the sharded channel `channel` (`SPUBLISH`): in a cluster it reaches
/// the subscribers of the channel's shard only.
pub fn publish_shard(ctx: &Context, channel: &RedisString, message: &RedisString) {
    // SAFETY: the live context and two strings the caller holds.
    unsafe {
        call!(RedisModule_PublishMessageShard(
            ctx.ctx,
            channel.inner,
            message.inner
        ))
    };
}

// --- the keyspace scan -----------------------------------------------------------------------

/// A keyspace scan that can go on across calls.
pub struct ScanCursor {
    ptr: *mut raw::RedisModuleScanCursor,
}

impl ScanCursor {
    /// A cursor at the start.
    pub fn new() -> ScanCursor {
        ScanCursor {
            // SAFETY: takes no arguments; the cursor is destroyed on drop.
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
    // SAFETY: `data` is the `&mut dyn FnMut` that `ScanCursor::step` passed for this scan.
    let found = unsafe { &mut *data.cast::<&mut dyn FnMut(&[u8])>() };
    found(RedisString::string_as_slice(name));
}

// --- the timer -----------------------------------------------------------------------------

/// A context of the module's own, kept to arm the timer outside a callback.
pub struct TimerContext {
    ptr: *mut raw::RedisModuleCtx,
}

/// An armed timer.
pub type TimerId = raw::RedisModuleTimerID;

impl TimerContext {
    /// A context detached from `ctx`, freed on drop.
    pub fn new(ctx: &Context) -> TimerContext {
        TimerContext {
            // SAFETY: the live context of the current callback; freed on drop.
            ptr: unsafe { call!(RedisModule_GetDetachedThreadSafeContext(ctx.ctx)) },
        }
    }

    /// Arms the timer to tick once after `delay_ms` ([`sweeper::on_tick`]).
    pub fn arm(&self, delay_ms: i64) -> TimerId {
        // SAFETY: a live detached context; the callback takes no data.
        unsafe {
            call!(RedisModule_CreateTimer(
                self.ptr,
                delay_ms.max(1) as raw::mstime_t,
                Some(timer_fired),
                ptr::null_mut()
            ))
        }
    }

    /// Stops a timer armed with this context.
    pub fn stop(&self, id: TimerId) {
        // SAFETY: a live detached context; Redis ignores an id it does not know.
        unsafe { call!(RedisModule_StopTimer(self.ptr, id, ptr::null_mut())) };
    }
}

impl Drop for TimerContext {
    fn drop(&mut self) {
        // SAFETY: the detached context, freed once, here.
        unsafe { call!(RedisModule_FreeThreadSafeContext(self.ptr)) };
    }
}

extern "C" fn timer_fired(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    let started = Instant::now();
    let mark = cpu_mark(started);
    sweeper::on_tick(&Context::new(ctx));
    note_tick_cpu(started, mark);
}

// --- the command filter --------------------------------------------------------------------

/// Has [`command_seen`] see the name of every command a client runs (not the module's own
/// calls), before it runs: how a cluster node learns that a `MIGRATE` or a `RESTORE-ASKING` is
/// running, or that a `CLUSTER` command may have changed its slots.
pub fn register_command_filter(ctx: &Context) -> bool {
    // SAFETY: `ctx` is the OnLoad context; the callback is a plain function that lives as long
    // as the library.
    let filter = unsafe {
        call!(RedisModule_RegisterCommandFilter(
            ctx.ctx,
            Some(command_seen),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        ))
    };
    !filter.is_null()
}

extern "C" fn command_seen(filter: *mut raw::RedisModuleCommandFilterCtx) {
    // SAFETY: Redis passes a live filter context for the duration of the call; the argument it
    // hands back is valid for as long.
    let name = unsafe {
        if call!(RedisModule_CommandFilterArgsCount(filter)) < 1 {
            return;
        }
        let arg = call!(RedisModule_CommandFilterArgGet(filter, 0));
        if arg.is_null() {
            return;
        }
        RedisString::string_as_slice(arg)
    };
    crate::cluster::command_seen(name);
}

// --- commands ------------------------------------------------------------------------------

/// How many arguments are read without a heap allocation.
const STACK_ARGS: usize = 8;

/// The oldest a reading of the thread's CPU time may be when a command or a timer tick starts,
/// for it to stand for the start.
const CPU_MARK_AGE: Duration = Duration::from_micros(250);

/// The CPU time (µs) over which a command or a timer tick is counted in `INFO presence`
/// (`presence_commands_over_5ms_cpu`, `presence_ticks_over_5ms_cpu`).
const CPU_COUNTED_US: u64 = 5_000;

thread_local! {
    /// The thread's CPU time in µs, and when it was read.
    static CPU_MARK: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// A reading of the thread's CPU time (µs) taken at most [`CPU_MARK_AGE`] before `now`: the
/// last one, or a new one when it is older.
fn cpu_mark(now: Instant) -> u64 {
    match CPU_MARK.get() {
        Some((at, cpu)) if now.duration_since(at) <= CPU_MARK_AGE => cpu,
        _ => {
            let cpu = thread_cpu_us();
            CPU_MARK.set(Some((now, cpu)));
            cpu
        }
    }
}

/// The wall-clock time since `started`, in µs: an upper bound of the CPU time used since.
fn micros_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The CPU time of work that took `wall` µs since it started, when the thread's CPU time read
/// `mark` at most [`CPU_MARK_AGE`] before: the lesser of `wall` and the CPU time from `mark` to
/// now, that is the work's own CPU time plus at most what the thread used in the
/// [`CPU_MARK_AGE`] before it.
fn cpu_used(wall: u64, mark: u64) -> u64 {
    let cpu = thread_cpu_us();
    CPU_MARK.set(Some((Instant::now(), cpu)));
    wall.min(cpu.saturating_sub(mark))
}

/// Records the CPU time of a command that started at `started` (the thread's CPU time read
/// `mark` then, [`cpu_mark`]): `presence_command_max_cpu_us` and
/// `presence_commands_over_5ms_cpu`.
///
/// The CPU clock is a system call (0.1 to 1.5 µs, as much as a whole `PRESENCE.COUNT`), so a
/// command reads it only when its wall-clock time, which its CPU time cannot exceed, is over
/// the maximum so far or over 5 ms, and otherwise at most once per [`CPU_MARK_AGE`] for the
/// commands that follow ([`cpu_used`]). Time the scheduler gave the CPU to other work is not
/// counted.
fn note_command_cpu(started: Instant, mark: u64) {
    let wall = micros_since(started);
    let _ = state::with(|s| {
        let stats = &mut s.stats;
        if wall > stats.max_command_cpu_us.min(CPU_COUNTED_US) {
            let cpu = cpu_used(wall, mark);
            stats.max_command_cpu_us = stats.max_command_cpu_us.max(cpu);
            stats.commands_over_5ms_cpu += u64::from(cpu > CPU_COUNTED_US);
        }
    });
}

/// Counts a timer tick that started at `started` (`mark`: [`cpu_mark`]) in
/// `presence_ticks_over_5ms_cpu` when it used over 5 ms of CPU ([`note_command_cpu`] tells
/// how that is read).
fn note_tick_cpu(started: Instant, mark: u64) {
    let wall = micros_since(started);
    if wall > CPU_COUNTED_US && cpu_used(wall, mark) > CPU_COUNTED_US {
        let _ = state::with(|s| s.stats.ticks_over_5ms_cpu += 1);
    }
}

/// Runs `handler` for a command Redis called with `argv`, and replies with its result; notes
/// the CPU time the command used ([`note_command_cpu`]). The arguments are read in place: no
/// copy, no reference counting. For the `extern "C"` command functions only, with the
/// arguments Redis gave them.
pub(crate) fn command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let started = Instant::now();
    let mark = cpu_mark(started);
    let replied = reply_to(ctx, argv, argc, handler);
    note_command_cpu(started, mark);
    replied
}

/// [`command`] without the measurement.
fn reply_to(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let context = Context::new(ctx);
    let raw_args: &[*mut raw::RedisModuleString] = match usize::try_from(argc) {
        // SAFETY: Redis passes `argc` valid strings at `argv` for the duration of the call.
        Ok(n) if n > 0 && !argv.is_null() => unsafe { std::slice::from_raw_parts(argv, n) },
        _ => &[],
    };
    let given = raw_args.get(1..).unwrap_or_default();
    let reply = if given.len() <= STACK_ARGS {
        let mut args: [&[u8]; STACK_ARGS] = [&[]; STACK_ARGS];
        for (slot, arg) in args.iter_mut().zip(given) {
            *slot = RedisString::string_as_slice(*arg);
        }
        crate::commands::run(&context, &args[..given.len()], handler)
    } else {
        let args: Vec<&[u8]> = given
            .iter()
            .map(|arg| RedisString::string_as_slice(*arg))
            .collect();
        crate::commands::run(&context, &args, handler)
    };
    context.reply(reply) as c_int
}

/// Starts an array reply of `len` elements.
pub fn reply_array(ctx: &Context, len: usize) {
    raw::reply_with_array(ctx.ctx, len as c_long);
}

/// Replies with a bulk string.
pub fn reply_bulk(ctx: &Context, value: &str) {
    raw::reply_with_string_buffer(ctx.ctx, value.as_ptr().cast::<c_char>(), value.len());
}

/// The ACL category every command joins, where the server has module categories.
const CATEGORY: &CStr = c"presence";

/// The module version the commands first appeared in.
const SINCE: &CStr = c"0.1.0";

/// The layout of the command info structures, as the module API wants it.
static INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
};

/// Registers `commands` with their documentation and, where the server has them, the
/// `@presence` ACL category; false when Redis refused one.
pub fn register_commands(ctx: &Context, commands: &[Spec]) -> bool {
    let categories = has_acl_categories()
        // SAFETY: the OnLoad context and a C string; the function exists (checked just above).
        && ok(unsafe { call!(RedisModule_AddACLCategory(ctx.ctx, CATEGORY.as_ptr())) });
    commands
        .iter()
        .all(|spec| create_command(ctx, spec) && describe_command(ctx, spec, categories))
}

fn create_command(ctx: &Context, spec: &Spec) -> bool {
    let (first, last) = if spec.room == RoomKey::None {
        (0, 0)
    } else {
        (1, 1)
    };
    // SAFETY: the OnLoad context, C strings that live for the program, and the command's
    // `extern "C"` function.
    ok(unsafe {
        call!(RedisModule_CreateCommand(
            ctx.ctx,
            spec.name.as_ptr(),
            Some(spec.handler),
            spec.flags.as_ptr(),
            first,
            last,
            first
        ))
    })
}

/// The key spec of the room argument: the first argument, one key.
fn room_key_spec(room: RoomKey) -> raw::RedisModuleCommandKeySpec {
    let flags = match room {
        RoomKey::Writes => raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE,
        _ => raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
    };
    // SAFETY: the key spec is plain data (pointers, integers and unions of integers), for which
    // all zeroes is valid; the fields that matter are set below.
    let mut spec: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
    spec.flags = u64::from(flags);
    spec.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    spec.bs.index.pos = 1;
    spec.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    spec.fk.range.lastkey = 0;
    spec.fk.range.keystep = 1;
    spec.fk.range.limit = 0;
    spec
}

fn raw_arg(arg: &Arg) -> raw::RedisModuleCommandArg {
    // SAFETY: as for the key spec: plain data, all zeroes is valid.
    let mut out: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
    out.name = arg.name.as_ptr();
    out.type_ = match arg.kind {
        ArgType::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
        ArgType::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
        ArgType::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
        ArgType::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
    };
    out.key_spec_index = if arg.kind == ArgType::Key { 0 } else { -1 };
    out.token = arg.token.map_or(ptr::null(), CStr::as_ptr);
    out.flags = if arg.optional {
        raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int
    } else {
        raw::REDISMODULE_CMD_ARG_NONE as c_int
    };
    out
}

/// Sets the command's documentation and, when `categories`, its ACL category.
fn describe_command(ctx: &Context, spec: &Spec, categories: bool) -> bool {
    // SAFETY: the OnLoad context and the name of a command just created.
    let command = unsafe { call!(RedisModule_GetCommand(ctx.ctx, spec.name.as_ptr())) };
    if command.is_null() {
        return false;
    }
    // Both arrays end with an all-zero entry, as the module API wants; Redis copies them.
    let mut key_specs = Vec::new();
    if spec.room != RoomKey::None {
        key_specs.push(room_key_spec(spec.room));
        // SAFETY: plain data, all zeroes is the terminator.
        key_specs.push(unsafe { std::mem::zeroed() });
    }
    let mut args: Vec<raw::RedisModuleCommandArg> = spec.args.iter().map(raw_arg).collect();
    if !args.is_empty() {
        // SAFETY: plain data, all zeroes is the terminator.
        args.push(unsafe { std::mem::zeroed() });
    }
    let info = raw::RedisModuleCommandInfo {
        version: &INFO_VERSION,
        summary: spec.summary.as_ptr(),
        complexity: spec.complexity.as_ptr(),
        since: SINCE.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: spec.arity,
        key_specs: if key_specs.is_empty() {
            ptr::null_mut()
        } else {
            key_specs.as_mut_ptr()
        },
        args: if args.is_empty() {
            ptr::null_mut()
        } else {
            args.as_mut_ptr()
        },
    };
    // SAFETY: a command of this module, and an info whose strings and arrays live until the
    // call returns (Redis copies them).
    let documented = ok(unsafe { call!(RedisModule_SetCommandInfo(command, &info)) });
    documented
        && (!categories
            // SAFETY: the same command and a C string; the function exists (checked).
            || ok(unsafe {
                call!(RedisModule_SetCommandACLCategories(
                    command,
                    CATEGORY.as_ptr()
                ))
            }))
}

// --- keyspace notifications and server events ----------------------------------------------------

/// Subscribes [`hooks::on_keyspace_event`] to the keyspace notifications of `classes`.
pub fn subscribe_keyspace_events(ctx: &Context, classes: NotifyEvent) -> bool {
    // SAFETY: the OnLoad context and a callback that lives for the program.
    ok(unsafe {
        call!(RedisModule_SubscribeToKeyspaceEvents(
            ctx.ctx,
            classes.bits(),
            Some(keyspace_event)
        ))
    })
}

extern "C" fn keyspace_event(
    ctx: *mut raw::RedisModuleCtx,
    kind: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if !event.is_null() && !key.is_null() {
        // SAFETY: Redis passes the event's name as a C string valid for the call.
        let event = unsafe { CStr::from_ptr(event) }.to_bytes();
        let key = KeyName {
            ptr: key,
            life: PhantomData,
        };
        hooks::on_keyspace_event(
            &Context::new(ctx),
            NotifyEvent::from_bits_truncate(kind),
            event,
            key,
        );
    }
    raw::REDISMODULE_OK as c_int
}

/// A server event the module follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// `FLUSHDB` of a database, or `FLUSHALL` (-1), about to happen.
    Flush(i32),
    /// `SWAPDB` of two databases.
    SwapDb(i32, i32),
    /// A load (RDB, AOF, a replica's full sync) ended.
    LoadingEnded,
    /// A replica's `repl-diskless-load swapdb` load started.
    SwapdbLoadStarted,
    /// That load failed: the old data stays.
    SwapdbLoadAborted,
    /// That load completed: its data replaced the old.
    SwapdbLoadCompleted,
    /// The server's cron ran.
    Cron,
}

/// Subscribes the module to the server events of [`ServerEvent`]; false when Redis refused.
pub fn subscribe_server_events(ctx: &Context) -> bool {
    [
        raw::REDISMODULE_EVENT_FLUSHDB,
        raw::REDISMODULE_EVENT_SWAPDB,
        raw::REDISMODULE_EVENT_LOADING,
        raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD,
        raw::REDISMODULE_EVENT_CRON_LOOP,
    ]
    .into_iter()
    .all(|id| {
        let event = raw::RedisModuleEvent { id, dataver: 1 };
        // SAFETY: the OnLoad context and a callback that lives for the program.
        ok(unsafe {
            call!(RedisModule_SubscribeToServerEvent(
                ctx.ctx,
                event,
                Some(server_event)
            ))
        })
    })
}

extern "C" fn server_event(
    ctx: *mut raw::RedisModuleCtx,
    event: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    let decoded = match event.id {
        raw::REDISMODULE_EVENT_FLUSHDB
            if subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_START && !data.is_null() =>
        {
            // SAFETY: for this event Redis passes a `RedisModuleFlushInfoV1`.
            let info = unsafe { &*data.cast::<raw::RedisModuleFlushInfoV1>() };
            ServerEvent::Flush(info.dbnum)
        }
        raw::REDISMODULE_EVENT_SWAPDB if !data.is_null() => {
            // SAFETY: for this event Redis passes a `RedisModuleSwapDbInfoV1`.
            let info = unsafe { &*data.cast::<raw::RedisModuleSwapDbInfoV1>() };
            ServerEvent::SwapDb(info.dbnum_first, info.dbnum_second)
        }
        raw::REDISMODULE_EVENT_LOADING if subevent == raw::REDISMODULE_SUBEVENT_LOADING_ENDED => {
            ServerEvent::LoadingEnded
        }
        raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD => match subevent {
            raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_STARTED => ServerEvent::SwapdbLoadStarted,
            raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_ABORTED => ServerEvent::SwapdbLoadAborted,
            raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_COMPLETED => ServerEvent::SwapdbLoadCompleted,
            _ => return,
        },
        raw::REDISMODULE_EVENT_CRON_LOOP => ServerEvent::Cron,
        _ => return,
    };
    match decoded {
        ServerEvent::Cron => sweeper::on_cron(),
        ServerEvent::SwapdbLoadStarted => rebuild::load_started(),
        ServerEvent::SwapdbLoadAborted => rebuild::load_aborted(),
        ServerEvent::SwapdbLoadCompleted => rebuild::load_completed(),
        other => hooks::on_server_event(&Context::new(ctx), other),
    }
}

// --- INFO ------------------------------------------------------------------------------------

/// The `INFO presence` section being written.
pub struct InfoSection {
    ctx: *mut raw::RedisModuleInfoCtx,
}

impl InfoSection {
    /// Adds the field `presence_<name>`.
    pub fn field(&self, name: &CStr, value: u64) {
        // SAFETY: the INFO context of the current callback and a C string.
        unsafe {
            call!(RedisModule_InfoAddFieldULongLong(
                self.ctx,
                name.as_ptr(),
                value
            ))
        };
    }
}

/// Registers [`info::on_info`] as the module's INFO callback.
pub fn register_info(ctx: &Context) -> bool {
    // SAFETY: the OnLoad context and a callback that lives for the program.
    ok(unsafe { call!(RedisModule_RegisterInfoFunc(ctx.ctx, Some(info_requested))) })
}

extern "C" fn info_requested(ctx: *mut raw::RedisModuleInfoCtx, for_crash_report: c_int) {
    if for_crash_report != 0 {
        return;
    }
    // SAFETY: the INFO context of this callback; a null name adds the module's own section.
    unsafe { call!(RedisModule_InfoAddSection(ctx, ptr::null_mut())) };
    info::on_info(&InfoSection { ctx });
}
