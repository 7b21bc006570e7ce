//! The sweeper: a Redis timer that, on masters, deletes every presence that is not live (stale,
//! expired, without TTL, or held through a node whose lease ended) as a replicated `DEL`, and
//! announces each as `force-leave`, and each lease that ended as `node-down`.
//!
//! The index hands it the dead presences (the down nodes' first, the node whose lease ended
//! first first; then the room with the earliest expiry first), so a tick costs what it
//! removes, not what exists. A tick stops once it has worked [`TICK_BUDGET`],
//! looking at the clock after every removal; when work is left the next tick comes after
//! [`BACKLOG_DELAY_MS`] instead of the full interval, so that a backlog drains quickly while
//! clients are served between ticks.

use crate::api::{TimerContext, TimerId};
use crate::cluster;
use crate::config;
use crate::publisher;
use crate::rebuild;
use crate::reconcile;
use crate::state;
use crate::store::{self, Kind, OpenKey};
use presence_core::changes::{self, PresenceRef};
use presence_core::db::{Dead, Step};
use presence_core::events::{Event, Reason};
use presence_core::ids::Socket;
use presence_core::keys::KeyFormat;
use presence_core::liveness::Moment;
use redis_module::Context;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// How long one tick may sweep.
pub const TICK_BUDGET: Duration = Duration::from_micros(500);
/// A tick longer than this, in µs (twice [`TICK_BUDGET`]), counts as slow in `INFO presence`.
pub const SLOW_TICK_US: u64 = 1000;
/// The delay before the next tick while a backlog remains.
pub const BACKLOG_DELAY_MS: i64 = 1;

thread_local! {
    /// A context kept from load, used to arm the timer outside a callback (on `CONFIG SET`).
    static TIMER_CTX: RefCell<Option<TimerContext>> = const { RefCell::new(None) };
    /// The armed timer, if any.
    static TIMER: Cell<Option<TimerId>> = const { Cell::new(None) };
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// Presences removed.
    pub removed: usize,
    /// True when the budget ran out with dead presences left.
    pub more: bool,
}

/// Keeps a context to arm the timer with; called once at load. The timer is armed by the
/// first server cron after the load ([`on_cron`]), not during the load itself: Redis refuses
/// to unload a module that holds a timer, and it may still unload this one after a successful
/// `OnLoad`.
pub fn prepare(ctx: &Context) {
    stop();
    TIMER_CTX.with(|t| *t.borrow_mut() = Some(TimerContext::new(ctx)));
}

/// The server cron (`hz` times a second): arms the timer when it is not armed.
pub fn on_cron() {
    cluster::between_commands();
    if TIMER.with(Cell::get).is_none() {
        arm(config::sweep_interval_ms());
    }
}

/// Stops the timer and lets go of the context kept to arm it; called at unload.
pub fn stop() {
    let Some(timer_ctx) = TIMER_CTX.with(|t| t.borrow_mut().take()) else {
        return;
    };
    if let Some(id) = TIMER.with(Cell::take) {
        timer_ctx.stop(id);
    }
}

/// Re-arms the timer with the current interval (`CONFIG SET presence.sweep-interval`).
pub fn rearm() {
    TIMER_CTX.with(|t| {
        if let Some(timer_ctx) = t.borrow().as_ref() {
            if let Some(id) = TIMER.with(Cell::take) {
                timer_ctx.stop(id);
            }
        }
    });
    arm(config::sweep_interval_ms());
}

fn arm(delay_ms: i64) {
    let id = TIMER_CTX.with(|t| t.borrow().as_ref().map(|timer_ctx| timer_ctx.arm(delay_ms)));
    if let Some(id) = id {
        TIMER.with(|t| t.set(Some(id)));
    }
}

/// The timer fired: one tick of the sweeper, then the timer is armed again.
pub fn on_tick(ctx: &Context) {
    TIMER.with(|t| t.set(None));
    cluster::between_commands();
    reconcile::resolve_pending(ctx);
    cluster::refresh(ctx);
    let mut next = config::sweep_interval_ms();
    if rebuild::in_progress() {
        if rebuild::step(ctx, TICK_BUDGET) {
            next = BACKLOG_DELAY_MS;
        }
        arm(next);
        return;
    }
    // While writes are paused (`CLIENT PAUSE WRITE`, `FAILOVER`) the sweeper stands still, as
    // Redis's own expiry does: a write now would break the pause. The next tick after the
    // pause catches up.
    // In a cluster it also waits until its node has been a healthy slot owner for a while (a
    // master restarted from old data may be failed over already), and while a slot moves.
    if store::is_active_master(ctx) && !store::writes_paused() && cluster::may_sweep() {
        let started = Instant::now();
        let cpu_before = store::thread_cpu_us();
        let outcome = sweep(ctx, Some(TICK_BUDGET));
        let took = started.elapsed().as_micros() as u64;
        let cpu = store::thread_cpu_us().saturating_sub(cpu_before);
        let _ = state::with(|s| {
            s.stats.sweeps += 1;
            s.stats.max_tick_us = s.stats.max_tick_us.max(took);
            s.stats.max_tick_cpu_us = s.stats.max_tick_cpu_us.max(cpu);
            if took > SLOW_TICK_US {
                s.stats.slow_ticks += 1;
            }
        });
        if outcome.more {
            next = BACKLOG_DELAY_MS;
        }
    }
    arm(next);
}

/// Removes dead presences from every database, within `budget` when one is given.
pub fn sweep(ctx: &Context, budget: Option<Duration>) -> Outcome {
    let started = Instant::now();
    let restore = store::SelectedDb::remember(ctx);
    let (dbs, entries) = state::with(|s| {
        let entries: usize = s.dbs.values().map(|index| index.rooms.entries()).sum();
        (s.dbs.keys().copied().collect::<Vec<i32>>(), entries)
    })
    .unwrap_or_default();
    let max_steps = entries.saturating_mul(2).saturating_add(1);
    let mut outcome = Outcome::default();
    let mut steps = 0usize;
    'dbs: for db in dbs {
        if !store::select_db(ctx, db) {
            continue;
        }
        loop {
            match sweep_one(ctx, db) {
                Swept::Nothing => break,
                Swept::Deleted => outcome.removed += 1,
                Swept::Other => {}
            }
            steps += 1;
            if steps >= max_steps {
                break 'dbs;
            }
            if let Some(budget) = budget {
                if started.elapsed() >= budget {
                    outcome.more = true;
                    break 'dbs;
                }
            }
        }
    }
    drop(restore);
    let _ = state::with(|s| s.stats.swept += outcome.removed as u64);
    outcome
}

/// What one step of the sweeper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swept {
    /// Nothing in the database is dead.
    Nothing,
    /// It deleted a dead presence's key.
    Deleted,
    /// Anything else: the index moved towards the next dead presence, found that it was behind
    /// the key (and caught up), or the key was already gone.
    Other,
}

/// Takes one step towards the next dead presence of `db` (a down node's first) and handles it.
fn sweep_one(ctx: &Context, db: i32) -> Swept {
    let now = config::moment_now();
    let found = match next_of_down_node(ctx, db, now) {
        Err(Swept::Nothing) => next_not_live(db, now),
        other => other,
    };
    match found {
        Ok((format, dead)) => remove(ctx, db, format, dead, now),
        Err(swept) => swept,
    }
}

/// One step among the down nodes of `db`: a presence of one, or what the step did (it
/// announces a lease that ended).
fn next_of_down_node(ctx: &Context, db: i32, now: Moment) -> Result<(KeyFormat, Dead), Swept> {
    let step = state::with(|s| (s.format, s.dbs.get_mut(&db).map(|d| d.node_step(now))));
    match step {
        Ok((format, Some(Step::Dead(dead)))) => Ok((format, dead)),
        Ok((_, Some(Step::Down { node, presences }))) => {
            publisher::publish(ctx, vec![Event::node_down(db, &node, presences)]);
            Err(Swept::Other)
        }
        Ok((_, Some(Step::Progress))) => Err(Swept::Other),
        _ => Err(Swept::Nothing),
    }
}

/// One step of the index towards the earliest presence of `db` that is not live by its expiry.
fn next_not_live(db: i32, now: Moment) -> Result<(KeyFormat, Dead), Swept> {
    let step = state::with(|s| (s.format, s.dbs.get_mut(&db).map(|d| d.first_dead(now))));
    match step {
        Ok((format, Some(Step::Dead(dead)))) => Ok((format, dead)),
        Ok((_, Some(Step::Progress))) => Err(Swept::Other),
        _ => Err(Swept::Nothing),
    }
}

/// Deletes the key of a presence the index found dead and announces it, once the key is
/// checked: a key that says otherwise brings the index in line instead.
fn remove(ctx: &Context, db: i32, format: KeyFormat, dead: Dead, now: Moment) -> Swept {
    if !cluster::owns_room(&dead.room) {
        cluster::found_stray(ctx, &dead.room);
        return Swept::Nothing;
    }
    let name = store::string(ctx, format.key(&dead.room, &dead.user).as_bytes());
    let key = OpenKey::open(ctx, &name, true);
    let unchanged = state::with(|s| {
        s.dbs
            .get(&db)
            .and_then(|index| index.get(&dead.room, &dead.user))
            == Some(&dead.presence)
    })
    .unwrap_or(false);
    if !unchanged {
        return Swept::Other;
    }
    let at = PresenceRef {
        db,
        room: &dead.room,
        user: &dead.user,
    };
    let socket = Socket::from(dead.socket.as_str());
    let dead_reason = |expire_at: i64| {
        state::with(|s| {
            s.dbs
                .get(&db)
                .and_then(|index| index.dead_reason(socket, expire_at, now))
        })
        .ok()
        .flatten()
    };
    let (reason, deleted) = match key.kind() {
        Kind::String => {
            let actual = key.expire_at();
            match dead_reason(actual) {
                Some(why) => (Reason::from(why), store::delete(ctx, key, &name)),
                None => {
                    drop(key);
                    let events =
                        state::with(|s| changes::observed(s.db(db), at, socket, actual, now).0)
                            .unwrap_or_default();
                    publisher::publish(ctx, events);
                    return Swept::Other;
                }
            }
        }
        Kind::Empty | Kind::Other => {
            drop(key);
            let reason = dead_reason(dead.presence.expire_at).map_or(Reason::Deleted, Reason::from);
            (reason, false)
        }
    };
    let events = state::with(|s| {
        if deleted && reason == Reason::NodeDown {
            s.stats.node_down += 1;
        }
        changes::removed(s.db(db), at, reason, now)
    })
    .unwrap_or_default();
    publisher::publish(ctx, events);
    if deleted {
        Swept::Deleted
    } else {
        Swept::Other
    }
}
