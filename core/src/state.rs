//! Everything the module keeps between calls, and the changes of the whole state that Redis's
//! server events cause (flushes, `SWAPDB`, the end of a load), the raw writes waiting to be
//! read, and forgetting a key: each a method that returns the events it causes, for the glue to
//! publish.

use crate::changes::{self, PresenceRef};
use crate::db::Db;
use crate::events::{Channels, Event, Reason, ResetReason};
use crate::keys::{self, KeyFormat};
use crate::liveness::{Moment, NO_TTL};
use std::collections::{BTreeMap, BTreeSet};

/// Counters shown by `INFO presence`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Sweeps run (timer ticks that swept, and `PRESENCE.SWEEP` calls).
    pub sweeps: u64,
    /// Presences the sweeper removed.
    pub swept: u64,
    /// Presences removed because the lease of their node ended (by the sweeper or a
    /// heartbeat).
    pub node_down: u64,
    /// Events published.
    pub events: u64,
    /// The longest sweep tick, in microseconds.
    pub max_tick_us: u64,
    /// The most CPU time one sweep tick used, in microseconds (the wall-clock figure above
    /// also counts the time the machine gave the CPU to other work).
    pub max_tick_cpu_us: u64,
    /// Timer ticks that took longer than twice their budget, by the wall clock.
    pub slow_ticks: u64,
    /// The most CPU time one presence command used, in microseconds (it may count the CPU time
    /// of up to a quarter of a millisecond before the command, see `cpu::note_command_cpu` in the
    /// module).
    pub max_command_cpu_us: u64,
    /// Presence commands that used over 5 ms of CPU time.
    pub commands_over_5ms_cpu: u64,
    /// Timer ticks (the sweeper's) that used over 5 ms of CPU time.
    pub ticks_over_5ms_cpu: u64,
    /// The most CPU time one timer tick used, in microseconds: the whole tick (a slice of a
    /// rebuild included), read for the ticks that took over 5 ms by the wall clock (0 when none
    /// did).
    pub max_timer_tick_cpu_us: u64,
}

/// Everything the module keeps between calls.
#[derive(Debug)]
pub struct State {
    /// The presences and leases of each database that holds some.
    pub dbs: BTreeMap<i32, Db>,
    /// Presence and lease keys written by a raw string command (`SET`, `SETRANGE`, …) whose new value and TTL are
    /// read at the next event for the key, command, or sweep tick (Redis 7.0 sends `set` before
    /// the `expire` of a `SET … EX`).
    pub pending: Vec<(i32, Vec<u8>)>,
    /// The form of key names of this server's mode.
    pub format: KeyFormat,
    /// The channels events go to: with the rooms' channels, a `reset` goes to each room too.
    pub channels: Channels,
    /// Counters.
    pub stats: Stats,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        State {
            dbs: BTreeMap::new(),
            pending: Vec::new(),
            format: KeyFormat::Standalone,
            channels: Channels::Global,
            stats: Stats::default(),
        }
    }

    /// The presences and leases of `db`, created when missing.
    pub fn db(&mut self, db: i32) -> &mut Db {
        self.dbs.entry(db).or_default()
    }

    /// `FLUSHDB` of `target`, or `FLUSHALL` when `target` is negative (also the flush that
    /// starts a `DEBUG RELOAD` or a replica's full sync): forgets those databases and their
    /// waiting raw writes. A `reset` for each database that held presences.
    pub fn flush(&mut self, target: i32) -> Vec<Event> {
        let all = target < 0;
        let reason = if all {
            ResetReason::FlushAll
        } else {
            ResetReason::FlushDb
        };
        self.pending.retain(|(db, _)| !all && *db != target);
        let mut events = Vec::new();
        for (db, index) in &self.dbs {
            if (all || *db == target) && !index.is_empty() {
                self.resets(&mut events, *db, index, reason);
            }
        }
        self.dbs.retain(|db, _| !all && *db != target);
        events
    }

    /// Adds the `reset` of `db` (held in `index`) for `reason`: on the global channel, and on
    /// the channel of each room it holds when events go to the rooms' channels.
    fn resets(&self, events: &mut Vec<Event>, db: i32, index: &Db, reason: ResetReason) {
        events.push(Event::reset(db, reason));
        if self.channels.room() {
            events.extend(
                index
                    .rooms
                    .room_names()
                    .map(|room| Event::room_reset(db, room, reason)),
            );
        }
    }

    /// `SWAPDB a b`: the two databases exchange their presences and waiting raw writes. A
    /// `reset` on both, unless they are the same.
    pub fn swap_dbs(&mut self, a: i32, b: i32) -> Vec<Event> {
        for (db, _) in self.pending.iter_mut() {
            if *db == a {
                *db = b;
            } else if *db == b {
                *db = a;
            }
        }
        if a == b {
            return Vec::new();
        }
        let mut events = Vec::new();
        let empty = Db::default();
        for db in [a, b] {
            events.push(Event::reset(db, ResetReason::SwapDb));
            if self.channels.room() {
                let mut rooms = BTreeSet::new();
                for index in [&a, &b].map(|d| self.dbs.get(d).unwrap_or(&empty)) {
                    rooms.extend(index.rooms.room_names());
                }
                events.extend(
                    rooms
                        .into_iter()
                        .map(|room| Event::room_reset(db, room, ResetReason::SwapDb)),
                );
            }
        }
        let index_a = self.dbs.remove(&a);
        let index_b = self.dbs.remove(&b);
        if let Some(index) = index_a {
            self.dbs.insert(b, index);
        }
        if let Some(index) = index_b {
            self.dbs.insert(a, index);
        }
        events
    }

    /// A load from RDB or AOF (or a replica's full sync) ended: a `reset` for each database
    /// that holds presences now.
    pub fn loaded(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for (db, index) in self.dbs.iter().filter(|(_, index)| !index.is_empty()) {
            self.resets(&mut events, *db, index, ResetReason::Load);
        }
        events
    }

    /// Indexes every presence a load set aside ([`Db::stage`]), in every database.
    pub fn index_staged(&mut self) {
        for index in self.dbs.values_mut() {
            index.index_staged();
        }
    }

    /// Forgets every presence and waiting raw write, to index the keys again from scratch.
    pub fn clear(&mut self) {
        self.dbs.clear();
        self.pending.clear();
    }

    /// Remembers a raw string write to `name` in `db`, once; the number of writes waiting.
    pub fn defer(&mut self, db: i32, name: &[u8]) -> usize {
        if !self.pending.iter().any(|(d, key)| *d == db && key == name) {
            self.pending.push((db, name.to_vec()));
        }
        self.pending.len()
    }

    /// Drops `name` of `db` from the waiting raw writes; true when it was there.
    pub fn take_pending(&mut self, db: i32, name: &[u8]) -> bool {
        let before = self.pending.len();
        self.pending.retain(|(d, key)| *d != db || key != name);
        self.pending.len() != before
    }

    /// The key `name` of `db` is gone for `reason`: removes it from the index, or its lease
    /// from the leases (and from the waiting raw writes) without reading it, and says what that
    /// changed. The end of a lease is announced by the sweeper, with the presences it removes.
    pub fn forget(&mut self, db: i32, name: &[u8], reason: Reason, now: Moment) -> Vec<Event> {
        self.take_pending(db, name);
        let Some(index) = self.dbs.get_mut(&db) else {
            return Vec::new();
        };
        if let Some(lease) = keys::parse_lease(name) {
            index.leases.set_lease(lease, NO_TTL);
            return Vec::new();
        }
        let Some((room, user)) = self.format.parse(name) else {
            return Vec::new();
        };
        changes::removed(index, PresenceRef { db, room, user }, reason, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Moment = Moment { now: 0, cutoff: 0 };

    fn names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{} {}", e.channel(), e.payload))
            .collect()
    }

    /// Presences in databases 0, 1 and 2 (db 2 emptied again), and a raw write waiting in
    /// each of 0 and 1.
    fn populated() -> State {
        let mut state = State::new();
        state.db(0).rooms.upsert("r", "a", "s", 100);
        state.db(1).rooms.upsert("r", "b", "s", 100);
        state.db(2).rooms.upsert("r", "c", "s", 100);
        state.db(2).rooms.remove("r", "c");
        state.defer(0, b"room:presence:r:x");
        state.defer(1, b"room:presence:r:y");
        state
    }

    #[test]
    fn flushdb_forgets_one_database_and_resets_it_if_it_held_presences() {
        let mut state = populated();
        assert_eq!(
            names(&state.flush(1)),
            [r#"__presence@1__:reset {"reason":"flushdb"}"#]
        );
        assert!(!state.dbs.contains_key(&1));
        assert_eq!(state.pending, [(0, b"room:presence:r:x".to_vec())]);
        assert!(state.flush(2).is_empty(), "db 2 held no presence");
        assert!(state.flush(7).is_empty());
    }

    #[test]
    fn flushall_forgets_everything() {
        let mut state = populated();
        assert_eq!(
            names(&state.flush(-1)),
            [
                r#"__presence@0__:reset {"reason":"flushall"}"#,
                r#"__presence@1__:reset {"reason":"flushall"}"#
            ]
        );
        assert!(state.dbs.is_empty());
        assert!(state.pending.is_empty());
    }

    #[test]
    fn swapdb_exchanges_indexes_and_waiting_writes() {
        let mut state = populated();
        assert_eq!(
            names(&state.swap_dbs(0, 3)),
            [
                r#"__presence@0__:reset {"reason":"swapdb"}"#,
                r#"__presence@3__:reset {"reason":"swapdb"}"#
            ]
        );
        assert!(state.dbs[&3].get("r", "a").is_some());
        assert!(!state.dbs.contains_key(&0));
        assert_eq!(state.pending[0], (3, b"room:presence:r:x".to_vec()));
        assert!(state.swap_dbs(1, 1).is_empty());
        assert!(state.dbs[&1].get("r", "b").is_some());
    }

    #[test]
    fn a_load_resets_the_databases_that_hold_presences() {
        let state = populated();
        assert_eq!(
            names(&state.loaded()),
            [
                r#"__presence@0__:reset {"reason":"load"}"#,
                r#"__presence@1__:reset {"reason":"load"}"#
            ]
        );
        assert!(State::new().loaded().is_empty());
    }

    /// The room channels and payloads of the events that go to a room's channel.
    fn room_events(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| Some(format!("{} {}", e.room_channel()?, e.room_payload())))
            .collect()
    }

    #[test]
    fn with_room_channels_a_reset_reaches_every_room_held() {
        let mut state = populated();
        state.channels = Channels::Room;
        state.db(0).rooms.upsert("q", "a", "s", 100);
        let mut swapped = room_events(&state.swap_dbs(0, 1));
        swapped.sort();
        assert_eq!(
            swapped,
            [
                r#"__presence@0__:{q} {"room":"q","reason":"swapdb","event":"reset"}"#,
                r#"__presence@0__:{r} {"room":"r","reason":"swapdb","event":"reset"}"#,
                r#"__presence@1__:{q} {"room":"q","reason":"swapdb","event":"reset"}"#,
                r#"__presence@1__:{r} {"room":"r","reason":"swapdb","event":"reset"}"#,
            ]
        );
        let mut loaded = room_events(&state.loaded());
        loaded.sort();
        assert_eq!(loaded.len(), 3, "{loaded:?}");
        let flushed = state.flush(1);
        assert_eq!(flushed.iter().filter(|e| e.global).count(), 1);
        let mut rooms = room_events(&flushed);
        rooms.sort();
        assert_eq!(
            rooms,
            [
                r#"__presence@1__:{q} {"room":"q","reason":"flushdb","event":"reset"}"#,
                r#"__presence@1__:{r} {"room":"r","reason":"flushdb","event":"reset"}"#,
            ]
        );
    }

    #[test]
    fn raw_writes_wait_once_each_until_taken() {
        let mut state = State::new();
        assert_eq!(state.defer(0, b"k"), 1);
        assert_eq!(state.defer(0, b"k"), 1);
        assert_eq!(state.defer(1, b"k"), 2);
        assert!(state.take_pending(0, b"k"));
        assert!(!state.take_pending(0, b"k"));
        state.clear();
        assert!(state.pending.is_empty());
    }

    #[test]
    fn forget_removes_and_announces_a_presence_key_only() {
        let mut state = populated();
        let events = state.forget(0, b"room:presence:r:a", Reason::Expired, AT);
        assert_eq!(
            names(&events),
            [
                r#"__presence@0__:force-leave {"room":"r","user":"a","socket":"s","count":0,"reason":"expired"}"#
            ]
        );
        assert!(state
            .forget(0, b"room:presence:r:a", Reason::Deleted, AT)
            .is_empty());
        assert!(state.forget(0, b"other", Reason::Deleted, AT).is_empty());
        assert!(state
            .forget(9, b"room:presence:r:a", Reason::Deleted, AT)
            .is_empty());
        state.defer(0, b"room:presence:r:x");
        state.forget(0, b"room:presence:r:x", Reason::Deleted, AT);
        assert!(state.pending.iter().all(|(db, _)| *db != 0));
    }

    #[test]
    fn forget_ends_a_lease_silently() {
        let mut state = populated();
        state.db(0).leases.set_lease("n", 100);
        assert!(state
            .forget(0, b"presence:node:n", Reason::Expired, AT)
            .is_empty());
        assert!(!state.dbs[&0].leases.is_up_by_name("n", AT));
    }
}
