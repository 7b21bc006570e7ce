//! Presence data keys (§12): `room:presence-data:<room>:<user>` (cluster:
//! `room:presence-data:{<room>}:<user>`), a plain string with exactly the presence key's
//! absolute expiry. Written, refreshed and removed by the commands and the sweeper in the same
//! call as the presence (replicated as `SET … PXAT`, `PEXPIREAT`, `DEL` through `store.rs`);
//! followed through the hooks when anything else changes one.
//!
//! Which presences may have a data key is kept per database
//! ([`presence_core::data::DataKeys`]), so that the commands of presences without data never
//! open a data key. A presence that ends where no key may be written (a keyspace notification)
//! leaves its data key to check: the sweeper's next tick removes it unless data was written for
//! the presence since ([`check_orphan`]).

use crate::cluster;
use crate::ffi::keys::{Kind, ReadKey, WriteKey};
use crate::state;
use crate::store::{self, Observed};
use presence_core::changes::PresenceRef;
use presence_core::data::{self, Verdict};
use presence_core::liveness::Moment;
use redis_module::{Context, RedisString};

/// The data key of (room, user) in this server's form.
fn key_name(ctx: &Context, room: &str, user: &str) -> Option<RedisString> {
    let format = state::unless_busy(|s| Some(s.format))?;
    Some(store::string(ctx, format.data_key(room, user).as_bytes()))
}

/// True when (room, user) of `db` may have a data key (no key is opened).
pub fn may_have(db: i32, room: &str, user: &str) -> bool {
    state::unless_busy(|s| s.dbs.get(&db).is_some_and(|d| d.data.may_have(room, user)))
}

/// Notes that (room, user) of `db` has a data key, or that it has none.
fn note(db: i32, room: &str, user: &str, present: bool) {
    state::unless_busy(|s| {
        let data = &mut s.db(db).data;
        if present {
            data.add(room, user);
        } else {
            data.remove(room, user);
        }
    });
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The data key already held the same data, live at `now`: only its expiry was written
    /// (with `expiry_too`), or nothing.
    Same,
    /// The data was written.
    Written,
    /// Redis refused the write.
    Refused,
}

/// Sets the data of the presence `at` (its database the selected one) to `value`, expiring at
/// `expire_at`, with one key opened to compare and write. When the key holds `value` live at
/// `now` already, only the expiry is written, and only when `expiry_too` (a join moves it, an
/// update does not).
pub fn put(
    ctx: &Context,
    at: PresenceRef<'_>,
    value: &[u8],
    expire_at: i64,
    now: i64,
    expiry_too: bool,
) -> Put {
    let PresenceRef { db, room, user } = at;
    let Some(name) = key_name(ctx, room, user) else {
        return Put::Refused;
    };
    let mut key = WriteKey::open(ctx, &name);
    let same = may_have(db, room, user)
        && matches!(
            store::observe(&key),
            Observed::String { value: held, expire_at: at } if at > now && held == value
        );
    if same && !expiry_too {
        return Put::Same;
    }
    // Data of the same length or shorter is written over the old in place (the key keeps its
    // entry); the effect written and replicated is the same `SET … PXAT` either way.
    let in_place = !same && key.overwrite_string(value);
    if !store::write_string(ctx, key, &name, value, expire_at, same || in_place) {
        return Put::Refused;
    }
    note(db, room, user, true);
    if same {
        Put::Same
    } else {
        Put::Written
    }
}

/// The data of (room, user) in the selected database at `now`, when it has some (a key that
/// is logically expired, as a replica may still hold, has none).
pub fn read(ctx: &Context, room: &str, user: &str, now: i64) -> Option<Vec<u8>> {
    let name = key_name(ctx, room, user)?;
    let key = ReadKey::open(ctx, &name);
    match store::observe(&key) {
        Observed::String { value, expire_at } if expire_at > now => Some(value.to_vec()),
        _ => None,
    }
}

/// Deletes the data key of (room, user) in `db` (the selected database) when it may have one;
/// true when it held data live at `now` (what [`read`] would have given).
pub fn remove(ctx: &Context, db: i32, room: &str, user: &str, now: i64) -> bool {
    if !may_have(db, room, user) {
        return false;
    }
    let Some(name) = key_name(ctx, room, user) else {
        return false;
    };
    let key = WriteKey::open(ctx, &name);
    let live =
        matches!(store::observe(&key), Observed::String { expire_at, .. } if expire_at > now);
    if key.kind() != Kind::Empty {
        store::delete(ctx, key, &name);
    }
    note(db, room, user, false);
    live
}

/// Moves the expiry of the data key of (room, user) in `db` (the selected database) to
/// `expire_at`, the presence's new expiry, when it has one.
pub fn refresh(ctx: &Context, db: i32, room: &str, user: &str, expire_at: i64) {
    if !may_have(db, room, user) {
        return;
    }
    let Some(name) = key_name(ctx, room, user) else {
        return;
    };
    let key = WriteKey::open(ctx, &name);
    match key.kind() {
        Kind::String => {
            store::refresh(ctx, key, &name, expire_at);
        }
        Kind::Empty => {
            drop(key);
            note(db, room, user, false);
        }
        Kind::Other => {}
    }
}

/// A notification on the data key `name` of `db`: `gone` when the key was deleted, renamed or
/// moved away, expired or evicted; otherwise it was written (or loaded, or moved here), and is
/// checked at the next tick unless `moved_in` (a key `RESTORE-ASKING` brought with its room).
pub fn observed(db: i32, name: &[u8], gone: bool, moved_in: bool) {
    state::unless_busy(|s| {
        let format = s.format;
        let Some((room, user)) = format.parse_data(name) else {
            return;
        };
        let data = &mut s.db(db).data;
        if gone {
            data.remove(room, user);
        } else if moved_in {
            data.add(room, user);
        } else {
            data.appeared(room, user);
        }
    });
}

/// A client wrote the presence key `name` of `db` with a raw string command: its data key, if
/// it may have one, is checked at the next tick (a raw write is a join without data).
pub fn presence_written(db: i32, name: &[u8]) {
    state::unless_busy(|s| {
        let format = s.format;
        let Some(index) = s.dbs.get_mut(&db).filter(|index| !index.data.is_empty()) else {
            return;
        };
        if let Some((room, user)) = format.parse(name) {
            index.data.orphan(room, user);
        }
    });
}

/// Checks one data key of `db` (the selected database) whose presence ended or changed hands,
/// or that appeared, or whose presence a client gave another expiry
/// ([`presence_core::data::Check`]): the data of an ended presence is deleted (a replicated
/// `DEL`) unless data was written since, a key that appeared unless it belongs to the live
/// presence the index holds now ([`data::belongs`]: the same absolute expiry), and a key whose
/// live presence moved takes its expiry (a replicated `PEXPIREAT`).
/// False when none was waiting.
pub fn check_orphan(ctx: &Context, db: i32, now: Moment) -> bool {
    let Some((room, user, check)) = state::unless_busy(|s| s.dbs.get_mut(&db)?.data.take_orphan())
    else {
        return false;
    };
    if !cluster::owns_room(&room) {
        return true;
    }
    let verdict = state::unless_busy(|s| Some(s.dbs.get(&db)?.data.verdict(&room, &user, check)));
    if matches!(verdict, None | Some(Verdict::Keep)) {
        return true;
    }
    let Some(name) = key_name(ctx, &room, &user) else {
        return true;
    };
    let key = WriteKey::open(ctx, &name);
    if key.kind() == Kind::String && verdict == Some(Verdict::Follow) {
        let live = state::unless_busy(|s| s.db(db).live_expiry(&room, &user, now));
        if let Some(expire_at) = live.filter(|at| *at != store::expire_at(&key)) {
            store::refresh(ctx, key, &name, expire_at);
        }
        return true;
    }
    let keep = key.kind() == Kind::String
        && verdict == Some(Verdict::Compare)
        && data::belongs(
            state::unless_busy(|s| s.db(db).live_expiry(&room, &user, now)),
            store::expire_at(&key),
        );
    if keep {
        return true;
    }
    if key.kind() == Kind::String {
        store::delete(ctx, key, &name);
    } else {
        drop(key);
    }
    note(db, &room, &user, false);
    true
}

/// Forgets the data keys waiting to be checked in every database: on a replica, whose master
/// removes them (and replicates the `DEL`).
pub fn forget_orphans() {
    state::unless_busy(|s| {
        for index in s.dbs.values_mut() {
            index.data.clear_orphans();
        }
    });
}
