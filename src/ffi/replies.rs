//! The commands' `extern "C"` function: the arguments, read in place, and the reply.

use redis_module::{raw, Context, RedisResult, RedisString};
use std::os::raw::{c_char, c_int, c_long};

/// How many arguments are read without a heap allocation.
const STACK_ARGS: usize = 8;

/// A command handler: the context and the arguments after the command name.
pub type Handler = fn(&Context, &[&[u8]]) -> RedisResult;

/// What the module does around each of its commands.
pub trait Commands {
    /// A command: runs `handler` on `args`, the arguments after the command's name.
    fn command(ctx: &Context, args: &[&[u8]], handler: Handler) -> RedisResult;
    /// Runs `command`, a whole command from its arguments to its reply, and whatever the
    /// module measures around it.
    fn measure_command(command: impl FnOnce() -> c_int) -> c_int;
}

/// One command of the module: the handler its `extern "C"` function ([`command`]) runs.
pub trait Command {
    /// The handler.
    const HANDLER: Handler;
}

/// The `extern "C"` function of the command `K`, to register: runs `C::command` with
/// `K::HANDLER` on the arguments after the command's name and replies with its result, all
/// within `C::measure_command`. The arguments are read in place: no copy, no reference
/// counting.
///
/// # Safety
///
/// Only Redis calls it, as a command: `ctx` is the command's live context and `argv` holds
/// `argc` strings, valid for the duration of the call.
pub unsafe extern "C" fn command<C: Commands, K: Command>(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    C::measure_command(|| reply_to::<C>(ctx, argv, argc, K::HANDLER))
}

/// [`command`] without the measurement.
fn reply_to<C: Commands>(
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
        C::command(&context, &args[..given.len()], handler)
    } else {
        let args: Vec<&[u8]> = given
            .iter()
            .map(|arg| RedisString::string_as_slice(*arg))
            .collect();
        C::command(&context, &args, handler)
    };
    context.reply(reply) as c_int
}

/// Starts an array reply of `len` elements.
pub fn reply_array(ctx: &Context, len: usize) {
    raw::reply_with_array(ctx.ctx, len as c_long);
}

/// Replies with a bulk string.
pub fn reply_bulk(ctx: &Context, value: &[u8]) {
    raw::reply_with_string_buffer(ctx.ctx, value.as_ptr().cast::<c_char>(), value.len());
}

/// Replies with a null (RESP2's null bulk string).
pub fn reply_null(ctx: &Context) {
    raw::reply_with_null(ctx.ctx);
}
