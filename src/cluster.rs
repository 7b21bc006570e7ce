//! The module's side of Redis Cluster: what its node is (from `CLUSTER NODES` and `CLUSTER
//! INFO`, read again at each sweeper tick and after any `CLUSTER` command a client ran), the
//! `TRYAGAIN` of a command whose room is moving between shards, the command now running when
//! it moves keys (`MIGRATE` on the source, `RESTORE-ASKING` on the target), and whether the node
//! may sweep and publish on its own.
//!
//! On a standalone server every check here passes: nothing moves and the node owns everything.
//!
//! What it knows of its node lives in the module's state ([`state::ClusterNode`]).

use crate::config;
use crate::ffi::context::now_ms;
use crate::state::{self, ClusterNode, Running};
use presence_core::cluster::{key_slot, View};
use redis_module::{Context, RedisError, RedisValue};

/// How long after a client's `CLUSTER` command every presence command reads the node again.
const STALE_MS: i64 = 2000;

/// Runs `f` on what the module knows of its node.
fn node<R>(f: impl FnOnce(&ClusterNode) -> R) -> R {
    state::module(|m| f(&m.cluster))
}

/// A client command is about to run (from the command filter): remembers whether it moves
/// keys, and that a `CLUSTER` command may change the node's slots (one queued in a `MULTI` is
/// seen at the next sweeper tick).
pub fn command_seen(name: &[u8]) {
    let running = if name.eq_ignore_ascii_case(b"migrate") {
        Running::Migrate
    } else if name.eq_ignore_ascii_case(b"restore-asking") {
        Running::RestoreAsking
    } else {
        if name.eq_ignore_ascii_case(b"cluster") {
            node(|n| n.stale_until.set(now_ms().saturating_add(STALE_MS)));
        }
        Running::Other
    };
    node(|n| n.running.set(running));
}

/// No client command runs (the server cron, a timer): nothing that a key event now comes from
/// moves keys.
pub fn between_commands() {
    node(|n| n.running.set(Running::Other));
}

/// True while a `MIGRATE` runs: a key it deletes moved to another node.
pub fn moving_out() -> bool {
    node(|n| n.running.get()) == Running::Migrate
}

/// True while a `RESTORE-ASKING` runs: the key it writes moved here from another node.
pub fn moving_in() -> bool {
    node(|n| n.running.get()) == Running::RestoreAsking
}

/// Reads the node again: its line of `CLUSTER NODES` and the cluster's state.
pub fn refresh(ctx: &Context) {
    if !config::is_cluster() {
        return;
    }
    let nodes = text(ctx.call("CLUSTER", &["NODES"]));
    let info = text(ctx.call("CLUSTER", &["INFO"]));
    let cluster_ok = info.lines().any(|line| line.trim() == "cluster_state:ok");
    let view = View::parse(&nodes, cluster_ok);
    let healthy = view.as_ref().is_some_and(View::healthy_owner);
    node(|n| {
        let mut health = n.health.get();
        health.observe(healthy, now_ms());
        n.health.set(health);
        let mut current = n.view.borrow_mut();
        let same = match (current.as_ref(), view.as_ref()) {
            (Some(before), Some(now)) => before.same_slots(now),
            _ => false,
        };
        if !same {
            n.stray.set(false);
        }
        *current = view;
        if n.stale_until.get() == i64::MAX {
            n.stale_until.set(0);
        }
    });
}

/// The text of a reply ("" for an error or anything else).
fn text(reply: Result<RedisValue, RedisError>) -> String {
    match reply {
        Ok(RedisValue::SimpleString(s) | RedisValue::BulkString(s)) => s,
        Ok(RedisValue::StringBuffer(bytes) | RedisValue::VerbatimString((_, bytes))) => {
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Ok(RedisValue::BulkRedisString(s)) => String::from_utf8_lossy(s.as_slice()).into_owned(),
        _ => String::new(),
    }
}

/// `Ok` unless the slot of `key` (a command's declared key: a room, or a lease's `{tag}node`)
/// is migrating away from this node or being imported into it: then `TRYAGAIN`, as Redis
/// answers a multi-key command whose keys are split between two nodes.
pub fn settled(ctx: &Context, key: &[u8]) -> Result<(), RedisError> {
    if is_moving(ctx, key) {
        return Err(try_again(key));
    }
    Ok(())
}

/// True when the slot of `key` is migrating away from this node or being imported into it
/// (never on a standalone server).
pub fn is_moving(ctx: &Context, key: &[u8]) -> bool {
    if !config::is_cluster() {
        return false;
    }
    if now_ms() < node(|n| n.stale_until.get()) {
        refresh(ctx);
    }
    let slot = key_slot(key);
    node(|n| {
        n.view
            .borrow()
            .as_ref()
            .is_some_and(|view| view.is_moving(slot))
    })
}

/// The `TRYAGAIN` error of a command whose declared key's slot is moving.
pub fn try_again(key: &[u8]) -> RedisError {
    RedisError::String(format!(
        "TRYAGAIN {} is moving between shards (slot {}), try again",
        String::from_utf8_lossy(key),
        key_slot(key)
    ))
}

/// True when the node may sweep: on a standalone server always; in a cluster when it has been
/// a healthy slot owner for a while and none of its slots is moving (as last read).
pub fn may_sweep() -> bool {
    if !config::is_cluster() {
        return true;
    }
    let settled = node(|n| {
        n.view
            .borrow()
            .as_ref()
            .is_some_and(|view| !view.any_moving())
    });
    settled && confirmed() && !node(|n| n.stray.get())
}

/// True when the node owns the slot of `room` (always on a standalone server).
pub fn owns_room(room: &str) -> bool {
    if !config::is_cluster() {
        return true;
    }
    let slot = key_slot(room.as_bytes());
    node(|n| n.view.borrow().as_ref().is_some_and(|view| view.owns(slot)))
}

/// The sweeper met a presence of a slot the node does not own: it sweeps nothing more until
/// the node's slots change (logged once).
pub fn found_stray(ctx: &Context, room: &str) {
    if !node(|n| n.stray.replace(true)) {
        ctx.log_warning(&format!(
            "presence: this node holds presences of room {room}, whose slot it does not own; the sweeper waits until its slots change (redis-cli --cluster fix)"
        ));
    }
}

/// True when the node may publish what nobody asked for right now (expiries): on a standalone
/// server always; in a cluster once it has been a healthy slot owner for a while.
pub fn confirmed() -> bool {
    !config::is_cluster() || node(|n| n.health.get()).confirmed(now_ms())
}

/// The node loaded data or changed role: it must be seen a healthy owner for a while again.
pub fn forget_health() {
    node(|n| {
        let mut health = n.health.get();
        health.reset();
        n.health.set(health);
        n.stale_until.set(i64::MAX);
        n.stray.set(false);
    });
}
