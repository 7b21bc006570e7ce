//! The sweeper: a Redis timer that, on masters, deletes every presence that is not live (stale,
//! expired, without TTL, or held through a node whose lease ended) as a replicated `DEL`, and
//! announces each as `force-leave`, and each lease that ended as `node-down`. Its steps also
//! remove the data keys whose presence ended (`data::check_orphan`), first.
//!
//! The index hands it the dead presences (the down nodes' first, the node whose lease ended
//! first first; then the room with the earliest expiry first), so a tick costs what it
//! removes, not what exists. A tick stops once it has worked [`TICK_BUDGET`],
//! looking at the clock after every removal; when work is left the next tick comes after
//! [`BACKLOG_DELAY_MS`] instead of the full interval, so that a backlog drains quickly while
//! clients are served between ticks.
//!
//! What to do with a dead presence once its key is read is the core's decision
//! (`Db::sweep_verdict`); this file makes the Redis calls around it.

use crate::cluster;
use crate::config;
use crate::data;
use crate::ffi::context::{select_db, thread_cpu_us, writes_paused};
use crate::ffi::keys::{Kind, WriteKey};
use crate::ffi::timer::{Timer, TimerContext};
use crate::publisher;
use crate::rebuild;
use crate::reconcile;
use crate::state;
use crate::store;
use presence_core::changes::{self, PresenceRef};
use presence_core::db::{Dead, Step, Verdict};
use presence_core::events::Event;
use presence_core::ids::Socket;
use presence_core::keys::KeyFormat;
use presence_core::liveness::Moment;
use redis_module::Context;
use std::time::{Duration, Instant};

/// How long one tick may sweep.
pub const TICK_BUDGET: Duration = Duration::from_micros(500);
/// A tick longer than this, in µs (twice [`TICK_BUDGET`]), counts as slow in `INFO presence`.
pub const SLOW_TICK_US: u64 = 1000;
/// The delay before the next tick while a backlog remains.
pub const BACKLOG_DELAY_MS: i64 = 1;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// Presences removed.
    pub removed: usize,
    /// True when the budget ran out with dead presences left.
    pub more: bool,
}

/// Keeps a context to arm the timer with, whose ticks call `C::timer` (which runs
/// [`on_tick`]); called once at load. The timer is armed by the first server cron after the
/// load ([`on_cron`]), not during the load itself: Redis refuses to unload a module that holds
/// a timer, and it may still unload this one after a successful `OnLoad`.
pub fn prepare<C: Timer>(ctx: &Context) {
    stop();
    let timer_ctx = TimerContext::new::<C>(ctx);
    state::module(|m| m.timer_ctx.replace(Some(timer_ctx)));
}

/// The server cron (`hz` times a second): arms the timer when it is not armed.
pub fn on_cron() {
    cluster::between_commands();
    if state::module(|m| m.timer.get()).is_none() {
        arm(config::sweep_interval_ms());
    }
}

/// Stops the timer and lets go of the context kept to arm it; called at unload.
pub fn stop() {
    let Some(timer_ctx) = state::module(|m| m.timer_ctx.take()) else {
        return;
    };
    if let Some(id) = state::module(|m| m.timer.take()) {
        timer_ctx.stop(id);
    }
}

/// Re-arms the timer with the current interval (`CONFIG SET presence.sweep-interval`).
pub fn rearm() {
    rearm_in(config::sweep_interval_ms());
}

/// A rebuild of the index starts: the next tick comes at once, not after the interval.
pub fn hurry() {
    rearm_in(BACKLOG_DELAY_MS);
}

/// Stops the armed timer, if any, and arms it to tick after `delay_ms`.
fn rearm_in(delay_ms: i64) {
    state::module(|m| {
        if let Some(timer_ctx) = m.timer_ctx.borrow().as_ref() {
            if let Some(id) = m.timer.take() {
                timer_ctx.stop(id);
            }
        }
    });
    arm(delay_ms);
}

/// Arms the timer to tick after `delay_ms`, once there is a context to arm it with.
fn arm(delay_ms: i64) {
    state::module(|m| {
        if let Some(timer_ctx) = m.timer_ctx.borrow().as_ref() {
            m.timer.set(Some(timer_ctx.arm(delay_ms)));
        }
    });
}

/// The timer fired: one tick of the sweeper, then the timer is armed again.
pub fn on_tick(ctx: &Context) {
    state::module(|m| m.timer.set(None));
    cluster::between_commands();
    reconcile::resolve_pending(ctx);
    // A load indexes what it set aside when it ends, and a room's reads and writes index its
    // own first; this is for a load whose end was not announced, before the sweep looks for
    // dead presences.
    reconcile::index_staged();
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
    if store::is_active_master(ctx) && !writes_paused() && cluster::may_sweep() {
        let started = Instant::now();
        let cpu_before = thread_cpu_us();
        let outcome = sweep(ctx, Some(TICK_BUDGET));
        let took = started.elapsed().as_micros() as u64;
        let cpu = thread_cpu_us().saturating_sub(cpu_before);
        state::unless_busy(|s| {
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
    } else if !store::is_active_master(ctx) {
        data::forget_orphans();
    }
    arm(next);
}

/// Removes dead presences from every database, within `budget` when one is given.
pub fn sweep(ctx: &Context, budget: Option<Duration>) -> Outcome {
    let started = Instant::now();
    let restore = store::SelectedDb::remember(ctx);
    let (dbs, entries) = state::unless_busy(|s| {
        let entries: usize = s
            .dbs
            .values()
            .map(|index| index.rooms.entries() + index.data.orphans())
            .sum();
        (s.dbs.keys().copied().collect::<Vec<i32>>(), entries)
    });
    let max_steps = entries.saturating_mul(2).saturating_add(1);
    let mut outcome = Outcome::default();
    let mut steps = 0usize;
    'dbs: for db in dbs {
        if !select_db(ctx, db) {
            continue;
        }
        loop {
            let swept = if data::check_orphan(ctx, db, config::moment_now()) {
                Swept::Other
            } else {
                sweep_one(ctx, db)
            };
            match swept {
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
    state::unless_busy(|s| s.stats.swept += outcome.removed as u64);
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
    let step = state::unless_busy(|s| Some((s.format, s.dbs.get_mut(&db)?.node_step(now))));
    match step {
        Some((format, Step::Dead(dead))) => Ok((format, dead)),
        Some((_, Step::Down { node, presences })) => {
            publisher::publish(ctx, vec![Event::node_down(db, &node, presences)]);
            Err(Swept::Other)
        }
        Some((_, Step::Progress)) => Err(Swept::Other),
        _ => Err(Swept::Nothing),
    }
}

/// One step of the index towards the earliest presence of `db` that is not live by its expiry.
fn next_not_live(db: i32, now: Moment) -> Result<(KeyFormat, Dead), Swept> {
    let step = state::unless_busy(|s| Some((s.format, s.dbs.get_mut(&db)?.first_dead(now))));
    match step {
        Some((format, Step::Dead(dead))) => Ok((format, dead)),
        Some((_, Step::Progress)) => Err(Swept::Other),
        _ => Err(Swept::Nothing),
    }
}

/// Deletes the key of a presence the index found dead and announces it, once the key is
/// checked: a key that says otherwise brings the index in line instead ([`Db::sweep_verdict`]
/// decides).
///
/// [`Db::sweep_verdict`]: presence_core::db::Db::sweep_verdict
fn remove(ctx: &Context, db: i32, format: KeyFormat, dead: Dead, now: Moment) -> Swept {
    if !cluster::owns_room(&dead.room) {
        cluster::found_stray(ctx, &dead.room);
        return Swept::Nothing;
    }
    let user = dead.user.as_bytes();
    let user = user.as_str();
    let name = store::string(ctx, format.key(&dead.room, user).as_bytes());
    let key = WriteKey::open(ctx, &name);
    let key_expiry = (key.kind() == Kind::String).then(|| store::expire_at(&key));
    let verdict =
        state::unless_busy(|s| Some(s.dbs.get(&db)?.sweep_verdict(&dead, key_expiry, now)));
    let at = PresenceRef {
        db,
        room: &dead.room,
        user,
    };
    let (reason, deleted) = match verdict {
        None | Some(Verdict::Changed) => return Swept::Other,
        Some(Verdict::CatchUp { expire_at }) => {
            drop(key);
            let socket = Socket::from(dead.socket.as_str());
            let events =
                state::unless_busy(|s| changes::observed(s.db(db), at, socket, expire_at, now).0);
            publisher::publish(ctx, events);
            return Swept::Other;
        }
        Some(Verdict::Delete(reason)) => (reason, store::delete(ctx, key, &name)),
        Some(Verdict::Gone(reason)) => {
            drop(key);
            (reason, false)
        }
    };
    let events = state::unless_busy(|s| reconcile::ended(s, at, reason, deleted, now));
    publisher::publish(ctx, events);
    if deleted {
        Swept::Deleted
    } else {
        Swept::Other
    }
}
