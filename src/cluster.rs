//! The module's side of Redis Cluster: what its node is (from `CLUSTER NODES` and `CLUSTER
//! INFO`, read again at each sweeper tick and after any `CLUSTER` command a client ran), the
//! `TRYAGAIN` of a command whose room is moving between shards, the command now running when
//! it moves keys (`MIGRATE` on the source, `RESTORE-ASKING` on the target), and whether the node
//! may sweep and publish on its own.
//!
//! On a standalone server every check here passes: nothing moves and the node owns everything.

use crate::config;
use crate::store;
use presence_core::cluster::{key_slot, Health, View};
use redis_module::{Context, RedisError, RedisValue};
use std::cell::{Cell, RefCell};

thread_local! {
    /// The node as last read; `None` before the first read (or on a standalone server).
    static VIEW: RefCell<Option<View>> = const { RefCell::new(None) };
    /// Until when (Unix ms) the node's view is read again at every presence command: for a
    /// while after a client ran a `CLUSTER` command (Valkey applies a `SETSLOT` only once its
    /// replicas have it, after the command was seen).
    static STALE_UNTIL: Cell<i64> = const { Cell::new(i64::MAX) };
    /// How long the node has been a healthy slot owner.
    static HEALTH: Cell<Health> = const { Cell::new(Health::new()) };
    /// True when the sweeper found a presence of a slot the node does not own (it lost the
    /// slot, or loaded old data): it waits until the node's slots change.
    static STRAY: Cell<bool> = const { Cell::new(false) };
    /// The client command running now, as far as moving keys goes.
    static RUNNING: Cell<Running> = const { Cell::new(Running::Other) };
}

/// How long after a client's `CLUSTER` command every presence command reads the node again.
const STALE_MS: i64 = 2000;

/// The client command running now, for the keyspace hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Running {
    /// `MIGRATE`: the keys it deletes moved to another node.
    Migrate,
    /// `RESTORE-ASKING`: the key it writes moved here from another node of the cluster.
    RestoreAsking,
    /// Anything else.
    Other,
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
            STALE_UNTIL.with(|s| s.set(store::now_ms().saturating_add(STALE_MS)));
        }
        Running::Other
    };
    RUNNING.with(|r| r.set(running));
}

/// No client command runs (the server cron, a timer): nothing that a key event now comes from
/// moves keys.
pub fn between_commands() {
    RUNNING.with(|r| r.set(Running::Other));
}

/// True while a `MIGRATE` runs: a key it deletes moved to another node.
pub fn moving_out() -> bool {
    RUNNING.with(Cell::get) == Running::Migrate
}

/// True while a `RESTORE-ASKING` runs: the key it writes moved here from another node.
pub fn moving_in() -> bool {
    RUNNING.with(Cell::get) == Running::RestoreAsking
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
    HEALTH.with(|h| {
        let mut health = h.get();
        health.observe(healthy, store::now_ms());
        h.set(health);
    });
    VIEW.with(|v| {
        let mut current = v.borrow_mut();
        let same = match (current.as_ref(), view.as_ref()) {
            (Some(before), Some(now)) => before.same_slots(now),
            _ => false,
        };
        if !same {
            STRAY.with(|s| s.set(false));
        }
        *current = view;
    });
    if STALE_UNTIL.with(Cell::get) == i64::MAX {
        STALE_UNTIL.with(|s| s.set(0));
    }
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
    if store::now_ms() < STALE_UNTIL.with(Cell::get) {
        refresh(ctx);
    }
    let slot = key_slot(key);
    VIEW.with(|v| v.borrow().as_ref().is_some_and(|view| view.is_moving(slot)))
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
    let settled = VIEW.with(|v| v.borrow().as_ref().is_some_and(|view| !view.any_moving()));
    settled && confirmed() && !STRAY.with(Cell::get)
}

/// True when the node owns the slot of `room` (always on a standalone server).
pub fn owns_room(room: &str) -> bool {
    if !config::is_cluster() {
        return true;
    }
    let slot = key_slot(room.as_bytes());
    VIEW.with(|v| v.borrow().as_ref().is_some_and(|view| view.owns(slot)))
}

/// The sweeper met a presence of a slot the node does not own: it sweeps nothing more until
/// the node's slots change (logged once).
pub fn found_stray(ctx: &Context, room: &str) {
    if !STRAY.with(|s| s.replace(true)) {
        ctx.log_warning(&format!(
            "presence: this node holds presences of room {room}, whose slot it does not own; the sweeper waits until its slots change (redis-cli --cluster fix)"
        ));
    }
}

/// True when the node may publish what nobody asked for right now (expiries): on a standalone
/// server always; in a cluster once it has been a healthy slot owner for a while.
pub fn confirmed() -> bool {
    !config::is_cluster() || HEALTH.with(Cell::get).confirmed(store::now_ms())
}

/// The node loaded data or changed role: it must be seen a healthy owner for a while again.
pub fn forget_health() {
    HEALTH.with(|h| {
        let mut health = h.get();
        health.reset();
        h.set(health);
    });
    STALE_UNTIL.with(|s| s.set(i64::MAX));
    STRAY.with(|s| s.set(false));
}
