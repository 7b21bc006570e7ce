//! What leaves the server: replication of the module's writes as their effects, and `PUBLISH`.
//! Each returns false when Redis refused.

use super::ok;
use redis_module::{Context, RedisString};
use std::os::raw::c_char;

/// Replicates `SET name socket PXAT at` (`at` in decimal).
pub fn replicate_set_pxat(ctx: &Context, name: &RedisString, socket: &[u8], at: &[u8]) -> bool {
    // SAFETY: the format `sbcb` matches the arguments: a Redis string, a buffer and its
    // length, a C string, a buffer and its length; each valid for the call.
    ok(unsafe {
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
    })
}

/// Replicates `PEXPIREAT name at` (`at` in decimal).
pub fn replicate_pexpireat(ctx: &Context, name: &RedisString, at: &[u8]) -> bool {
    // SAFETY: the format `sb` matches: a Redis string, a buffer and its length.
    ok(unsafe {
        call!(RedisModule_Replicate(
            ctx.ctx,
            c"PEXPIREAT".as_ptr(),
            c"sb".as_ptr(),
            name.inner,
            at.as_ptr().cast::<c_char>(),
            at.len()
        ))
    })
}

/// Replicates `DEL name`.
pub fn replicate_del(ctx: &Context, name: &RedisString) -> bool {
    // SAFETY: the format `s` matches: one Redis string.
    ok(unsafe {
        call!(RedisModule_Replicate(
            ctx.ctx,
            c"DEL".as_ptr(),
            c"s".as_ptr(),
            name.inner
        ))
    })
}

/// Publishes `message` on `channel` (Redis answers how many clients received it, which the
/// module does not need).
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
