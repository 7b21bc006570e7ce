//! The command handlers: each parses its arguments into a typed request, applies it to the
//! presence key and the index, publishes what changed, and replies.

use crate::cluster;
use crate::config;
use crate::data::{self, Put};
use crate::ffi::context::{now_ms, selected_db};
use crate::ffi::keys::{Kind, WriteKey};
use crate::ffi::replies::{self, Handler};
use crate::publisher;
use crate::rebuild;
use crate::reconcile;
use crate::state::{self, Busy};
use crate::store;
use crate::sweeper;
use presence_core::changes::{self, PresenceRef};
use presence_core::db::{Held, Prior};
use presence_core::error::PresenceError;
use presence_core::events::{Event, Reason};
use presence_core::index::Refresh;
use presence_core::keys::{self, KeyFormat, LeaseKey};
use presence_core::liveness::{Moment, NO_TTL};
use presence_core::request::{self, DataRequest, LeaseRequest, Target};
use presence_core::small_str::SmallStr;
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// The reply for a refused request.
fn refused(error: PresenceError) -> RedisError {
    match error {
        PresenceError::WrongArity => RedisError::WrongArity,
        other => RedisError::String(other.to_string()),
    }
}

/// Runs `handler` on the arguments of a command (after its name): while the index is rebuilt
/// after a replica's full sync, every command answers `LOADING` instead.
pub fn run(ctx: &Context, args: &[&[u8]], handler: Handler) -> RedisResult {
    if rebuild::in_progress() {
        return Err(RedisError::Str(rebuild::LOADING));
    }
    handler(ctx, args)
}

/// The key name of a target, in the selected database.
fn key_name(ctx: &Context, target: &Target) -> Result<RedisString, RedisError> {
    let format = state::with(|s| s.format)?;
    Ok(store::string(
        ctx,
        format.key(target.room, target.user).as_bytes(),
    ))
}

/// True when the index holds `target.socket` for (room, user) in `db`.
fn holds(db: i32, target: &Target) -> Result<bool, Busy> {
    state::with(|s| {
        s.dbs
            .get(&db)
            .is_some_and(|index| index.holds(target.room, target.user, target.socket))
    })
}

/// Announces that (room, user) ended for `reason` (its key deleted by the command when
/// `deleted`), removing it from the index, and deletes its data key if it has one.
fn end_presence(
    ctx: &Context,
    at: PresenceRef<'_>,
    reason: Reason,
    deleted: bool,
    now: Moment,
) -> Result<(), Busy> {
    let events = state::with(|s| reconcile::ended(s, at, reason, deleted, now))?;
    data::remove(ctx, at.db, at.room, at.user, now.now);
    publisher::publish(ctx, events);
    Ok(())
}

/// A presence key opened for writing, in the caller's database.
struct Opened {
    db: i32,
    name: RedisString,
    key: WriteKey,
}

/// Opens the key of `target` for writing. A key of another type is WRONGTYPE.
fn open(ctx: &Context, target: &Target) -> Result<Opened, RedisError> {
    reconcile::resolve_pending(ctx);
    let db = selected_db(ctx);
    let name = key_name(ctx, target)?;
    let key = WriteKey::open(ctx, &name);
    if key.kind() == Kind::Other {
        return Err(refused(PresenceError::WrongType));
    }
    Ok(Opened { db, name, key })
}

/// [`open`] for a command on one presence that may run while its room's slot moves (a
/// heartbeat, a leave): in a cluster, a key that is not here then may still be on the other
/// node, `TRYAGAIN`; one that is here is served.
fn open_here(ctx: &Context, target: &Target) -> Result<Opened, RedisError> {
    let moving = cluster::is_moving(ctx, target.room.as_bytes());
    let opened = open(ctx, target)?;
    if moving && opened.key.kind() == Kind::Empty {
        return Err(cluster::try_again(target.room.as_bytes()));
    }
    Ok(opened)
}

/// Opens the key of `target` ([`open_here`]) when it holds `target.socket`; `None` when it
/// does not.
fn open_held(ctx: &Context, target: &Target) -> Result<Option<Opened>, RedisError> {
    let opened = open_here(ctx, target)?;
    if opened.key.kind() == Kind::Empty {
        let db = opened.db;
        drop(opened);
        end_presence(
            ctx,
            target.at(db),
            Reason::Expired,
            false,
            config::moment_now(),
        )?;
        return Ok(None);
    }
    Ok(holds(opened.db, target)?.then_some(opened))
}

/// `PRESENCE.JOIN room user socket [DATA json]`: the presence's data is exactly what the join
/// carries (none without `DATA`).
pub fn join(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let DataRequest { target, data } = request::join(args, config::max_data()).map_err(refused)?;
    cluster::settled(ctx, target.room.as_bytes())?;
    let Opened { db, name, key } = open(ctx, &target)?;
    let rule = config::liveness();
    let now = rule.at(now_ms());
    if let Some(node) = target.socket.node {
        let up = state::with(|s| {
            s.dbs
                .get(&db)
                .is_some_and(|d| d.leases.is_up_by_name(node, now))
        })?;
        if !up {
            return Err(refused(PresenceError::NoLease(node.to_string())));
        }
    }
    let expire_at = rule.expire_at_after_beat(now.now);
    let existed = key.kind() == Kind::String;
    let (mut events, count, previous, had_data) = state::with(|s| {
        let index = s.db(db);
        // Not only when the key exists: a key deleted by a client may leave its data key
        // until the next tick, and this presence must not show it.
        let had_data = index.data.may_have(target.room, target.user);
        let (events, count, previous) =
            changes::observed(index, target.at(db), target.socket, expire_at, now);
        (events, count, previous, had_data)
    })?;
    let unchanged = existed && matches!(previous, Prior::Same { .. });
    if !store::write_string(
        ctx,
        key,
        &name,
        target.socket.full.as_bytes(),
        expire_at,
        unchanged,
    ) {
        return Err(RedisError::Str("ERR could not write the presence key"));
    }
    if data.is_some() || had_data {
        let joined = JoinedData {
            db,
            target: &target,
            data,
            expire_at,
            count,
            unchanged,
        };
        join_data(ctx, joined, &mut events)?;
    }
    publisher::publish(ctx, events);
    Ok(RedisValue::Integer(count as i64))
}

/// A JOIN of a presence that carries data or may have had some ([`join_data`]).
struct JoinedData<'a> {
    db: i32,
    target: &'a Target<'a>,
    data: Option<&'a [u8]>,
    expire_at: i64,
    count: usize,
    /// The same socket held the presence before: a join again, not a new presence.
    unchanged: bool,
}

/// Writes or removes the data key of a JOIN, after its presence key, and adds the data to its
/// `join` event; a join again by the same socket that changes the data announces `update`.
fn join_data(
    ctx: &Context,
    joined: JoinedData<'_>,
    events: &mut Vec<Event>,
) -> Result<(), RedisError> {
    let JoinedData {
        db,
        target,
        data,
        expire_at,
        count,
        unchanged,
    } = joined;
    let now = now_ms();
    let (room, user) = (target.room, target.user);
    // Whether the data changed, for the `update` of a join by the same socket.
    let changed = match data {
        Some(value) => match data::put(ctx, target.at(db), value, expire_at, now, true) {
            Put::Same => false,
            Put::Written => true,
            Put::Refused => return Err(not_written()),
        },
        None => data::remove(ctx, db, room, user, now) && unchanged,
    };
    let text = data.and_then(|value| std::str::from_utf8(value).ok());
    match events.iter_mut().find(|event| event.name == "join") {
        Some(event) => {
            if let Some(text) = text {
                event.add_data(text);
            }
        }
        None if unchanged && changed => events.push(update_event(db, target, count, text)),
        None => {}
    }
    Ok(())
}

/// The `update` event of the presence `target` in `db`, its room at `count`.
fn update_event(db: i32, target: &Target<'_>, count: usize, data: Option<&str>) -> Event {
    let (room, user, socket) = (target.room, target.user, target.socket.full);
    Event::update(db, room, user, socket, count, data)
}

/// The error of a data key Redis refused to write.
fn not_written() -> RedisError {
    RedisError::Str("ERR could not write the data key")
}

/// `PRESENCE.BEAT room user socket`: in a cluster, while the room's slot moves, a key that
/// already moved here is refreshed, one that did not answers `TRYAGAIN`.
pub fn beat(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let target = request::target(args).map_err(refused)?;
    let Opened { db, name, key } = open_here(ctx, &target)?;
    let rule = config::liveness();
    let now = rule.at(now_ms());
    if key.kind() == Kind::Empty {
        drop(key);
        end_presence(ctx, target.at(db), Reason::Expired, false, now)?;
        return Ok(RedisValue::Integer(0));
    }
    let expire_at = rule.expire_at_after_beat(now.now);
    let refreshed = state::with(|s| match s.dbs.get_mut(&db) {
        Some(index) => {
            let refreshed = index.refresh(target.room, target.user, target.socket, expire_at, now);
            let reason = match refreshed {
                Refresh::NotLive { expire_at } => index
                    .dead_reason(target.socket, expire_at, now)
                    .map_or(Reason::Stale, Reason::from),
                _ => Reason::Stale,
            };
            let has_data = index.data.may_have(target.room, target.user);
            (refreshed, reason, has_data)
        }
        None => (Refresh::NotHeld, Reason::Stale, false),
    })?;
    match refreshed {
        (Refresh::NotHeld, ..) => Ok(RedisValue::Integer(0)),
        (Refresh::NotLive { .. }, reason, _) => {
            let deleted = store::delete(ctx, key, &name);
            end_presence(ctx, target.at(db), reason, deleted, now)?;
            Ok(RedisValue::Integer(0))
        }
        (Refresh::Refreshed { .. }, _, has_data) => {
            if !store::refresh(ctx, key, &name, expire_at) {
                return Err(RedisError::Str("ERR could not refresh the presence key"));
            }
            if has_data {
                data::refresh(ctx, db, target.room, target.user, expire_at);
            }
            Ok(RedisValue::Integer(1))
        }
    }
}

/// `PRESENCE.LEAVE room user socket`
pub fn leave(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let target = request::target(args).map_err(refused)?;
    let Some(Opened { db, name, key }) = open_held(ctx, &target)? else {
        return Ok(RedisValue::Integer(0));
    };
    let deleted = store::delete(ctx, key, &name);
    end_presence(
        ctx,
        target.at(db),
        Reason::Leave,
        deleted,
        config::moment_now(),
    )?;
    Ok(RedisValue::Integer(1))
}

/// `PRESENCE.UPDATE room user socket json`: replaces the data of a live presence held by
/// `socket` (its expiry unchanged) and announces `update`; the same data again announces
/// nothing. `0` when the socket is not in the room: a presence found dead is removed as BEAT
/// removes it. In a cluster, `TRYAGAIN` while the room's slot moves (as JOIN).
pub fn update(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let DataRequest { target, data } =
        request::update(args, config::max_data()).map_err(refused)?;
    let value = data.unwrap_or_default();
    // While the room's slot moves, its data key may still be on the other node: an update now
    // could be overwritten by the key that moves after it.
    cluster::settled(ctx, target.room.as_bytes())?;
    let Opened { db, name, key } = open(ctx, &target)?;
    let now = config::moment_now();
    if key.kind() == Kind::Empty {
        drop(key);
        end_presence(ctx, target.at(db), Reason::Expired, false, now)?;
        return Ok(RedisValue::Integer(0));
    }
    let held = state::with(|s| s.db(db).held(target.room, target.user, target.socket, now))?;
    match held {
        Held::NotHeld => Ok(RedisValue::Integer(0)),
        Held::Dead(reason) => {
            let deleted = store::delete(ctx, key, &name);
            end_presence(ctx, target.at(db), reason.into(), deleted, now)?;
            Ok(RedisValue::Integer(0))
        }
        Held::Live { .. } => {
            let expire_at = store::expire_at(&key);
            drop(key);
            match data::put(ctx, target.at(db), value, expire_at, now.now, false) {
                Put::Same => return Ok(RedisValue::Integer(1)),
                Put::Written => {}
                Put::Refused => return Err(not_written()),
            }
            let count = state::with(|s| s.db(db).count(target.room, now))?;
            let text = std::str::from_utf8(value).ok();
            publisher::publish(ctx, vec![update_event(db, &target, count, text)]);
            Ok(RedisValue::Integer(1))
        }
    }
}

/// `PRESENCE.LIST room [WITHSOCKETS] [WITHDATA] [LIMIT n] [AFTER user]`
pub fn list(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let request = request::list(args).map_err(refused)?;
    cluster::settled(ctx, request.room.as_bytes())?;
    reconcile::resolve_pending(ctx);
    let db = selected_db(ctx);
    let now = config::moment_now();
    if request.with_data {
        return list_with_data(ctx, db, &request, now);
    }
    state::with(|s| {
        let entries = s
            .dbs
            .get_mut(&db)
            .map(|index| index.list(request.room, now, request.limit, request.after))
            .unwrap_or_default();
        let per_entry = if request.with_sockets { 2 } else { 1 };
        replies::reply_array(ctx, entries.len() * per_entry);
        let mut held = Vec::new();
        for (user, node, socket) in entries {
            user.with_bytes(|user| replies::reply_bulk(ctx, user));
            if request.with_sockets {
                held.clear();
                held_socket(&mut held, node, socket);
                replies::reply_bulk(ctx, &held);
            }
        }
    })?;
    Ok(RedisValue::NoReply)
}

/// Appends to `held` the socket of a listed presence as its key holds it: `<node>/<socket>`,
/// or the socket alone.
fn held_socket(held: &mut Vec<u8>, node: Option<&str>, socket: &SmallStr) {
    if let Some(node) = node {
        held.extend_from_slice(node.as_bytes());
        held.push(b'/');
    }
    socket.with_bytes(|socket| held.extend_from_slice(socket));
}

/// `PRESENCE.LIST … WITHDATA`: the page is copied out of the index first, then the data key of
/// each of its users is read, the keys being the truth (opening a key may notify the module,
/// which must not find its state borrowed).
fn list_with_data(
    ctx: &Context,
    db: i32,
    request: &request::ListRequest<'_>,
    now: Moment,
) -> RedisResult {
    let page: Vec<(String, Vec<u8>)> = state::with(|s| {
        s.dbs
            .get_mut(&db)
            .map(|index| {
                index
                    .list(request.room, now, request.limit, request.after)
                    .into_iter()
                    .map(|(user, node, socket)| {
                        let mut held = Vec::new();
                        held_socket(&mut held, node, socket);
                        (user.as_bytes().as_str().to_owned(), held)
                    })
                    .collect()
            })
            .unwrap_or_default()
    })?;
    let per_entry = if request.with_sockets { 3 } else { 2 };
    replies::reply_array(ctx, page.len() * per_entry);
    for (user, socket) in &page {
        replies::reply_bulk(ctx, user.as_bytes());
        if request.with_sockets {
            replies::reply_bulk(ctx, socket);
        }
        match data::read(ctx, request.room, user, now.now) {
            Some(value) => replies::reply_bulk(ctx, &value),
            None => replies::reply_null(ctx),
        }
    }
    Ok(RedisValue::NoReply)
}

/// `PRESENCE.COUNT room`
pub fn count(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let room = request::room(args).map_err(refused)?;
    cluster::settled(ctx, room.as_bytes())?;
    reconcile::resolve_pending(ctx);
    let db = selected_db(ctx);
    let now = config::moment_now();
    let count = state::with(|s| s.dbs.get_mut(&db).map_or(0, |index| index.count(room, now)))?;
    Ok(RedisValue::Integer(count as i64))
}

/// `PRESENCE.SWEEP`
pub fn sweep(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    request::none(args).map_err(refused)?;
    reconcile::resolve_pending(ctx);
    if !store::is_active_master(ctx) {
        return Err(RedisError::Str(
            "READONLY PRESENCE.SWEEP runs on the master only",
        ));
    }
    let outcome = sweeper::sweep(ctx, None);
    state::with(|s| s.stats.sweeps += 1)?;
    Ok(RedisValue::Integer(outcome.removed as i64))
}

/// `PRESENCE.LEASE [{tag}]node ms`: in a cluster the lease key is always under a hash tag
/// (the node id itself when none is given), so that it lives on the shard the command is
/// routed to.
pub fn lease(ctx: &Context, args: &[&[u8]]) -> RedisResult {
    let mut request = request::lease(args).map_err(refused)?;
    cluster::settled(ctx, args[0])?;
    reconcile::resolve_pending(ctx);
    let db = selected_db(ctx);
    let format = state::with(|s| s.format)?;
    if format == KeyFormat::Cluster && request.tag.is_empty() {
        request.tag = request.node;
    }
    let lease = LeaseKey {
        node: request.node,
        tag: request.tag,
    };
    let name = store::string(ctx, keys::lease_key(lease).as_bytes());
    let key = WriteKey::open(ctx, &name);
    let now = config::moment_now();
    let up = state::with(|s| s.db(db).leases.is_up_by_name(request.node, now))?;
    let (held, existed) = match key.kind() {
        Kind::Other => return Err(refused(PresenceError::WrongType)),
        Kind::Empty => (up, false),
        Kind::String => (up || now.lease_live(store::expire_at(&key)), true),
    };
    let expire_at = write_lease(ctx, key, &name, &request, existed, now)?;
    state::with(|s| s.db(db).leases.set_lease(lease, expire_at))?;
    Ok(RedisValue::Integer(i64::from(held)))
}

/// Writes the lease key `name` (`existed`: it holds a string) as `request` asks at `now`, and
/// returns its new expiry ([`NO_TTL`] once released).
fn write_lease(
    ctx: &Context,
    key: WriteKey,
    name: &RedisString,
    request: &LeaseRequest<'_>,
    existed: bool,
    now: Moment,
) -> Result<i64, RedisError> {
    if request.ms == 0 {
        if existed {
            store::delete(ctx, key, name);
        }
        return Ok(NO_TTL);
    }
    let expire_at = now.now.saturating_add(request.ms);
    let written = if existed {
        store::refresh(ctx, key, name, expire_at)
    } else {
        store::write_string(ctx, key, name, request.node.as_bytes(), expire_at, false)
    };
    if !written {
        return Err(RedisError::Str("ERR could not write the lease key"));
    }
    Ok(expire_at)
}
