//! The randomized test of the index: random operations on the index and on a simple model
//! (a map of (room, user) to (socket, expiry)), whose answers must agree at every step.

use super::invariants::totals_at;
use super::room::ORDER_BLOCK;
use super::{Presence, Prior, Refresh, RoomIndex, Step, LARGE_ROOM};
use crate::liveness::NO_TTL;
use crate::test_rng::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// How the random model test picks times.
#[derive(Clone, Copy)]
enum Times {
    /// Expiries and cutoffs anywhere in a small range, with extremes.
    Scattered,
    /// A clock that moves forward, heartbeats a little ahead of it, and a cutoff that
    /// sometimes steps back.
    Clock,
    /// A clock that moves forward, with a cutoff that jumps back and forth around it (as
    /// `stale-after` is changed).
    Jumps,
    /// Expiries far ahead of a clock that moves forward, so that rooms grow, with a cutoff
    /// that now and then jumps past most of them and back.
    Long,
}

impl Times {
    /// The expiry and the cutoff of step `step`, the clock at `clock`.
    fn pick(self, rng: &mut Rng, clock: i64, step: u32) -> (i64, i64) {
        match self {
            Times::Scattered => {
                let expire_at = match rng.below(20) {
                    0 => NO_TTL,
                    1 => i64::MAX,
                    2 => i64::MIN + 1,
                    3 => (1 << 40) + (rng.below(4) << 31) as i64,
                    _ => rng.below(1000) as i64,
                };
                let cutoff = match rng.below(40) {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    2 => 1 << 40,
                    _ => rng.below(1000) as i64,
                };
                (expire_at, cutoff)
            }
            Times::Clock => {
                let expire_at = match rng.below(50) {
                    0 => NO_TTL,
                    1 => clock - rng.below(100) as i64,
                    _ => clock + 50 + rng.below(200) as i64,
                };
                let cutoff = match rng.below(100) {
                    0 => clock - 300,
                    _ => clock,
                };
                (expire_at, cutoff)
            }
            Times::Jumps => {
                let expire_at = match rng.below(50) {
                    0 => NO_TTL,
                    _ => clock + rng.below(400) as i64,
                };
                let cutoff = match (step / 500) % 3 {
                    0 => clock,
                    1 => clock + 200,
                    _ => clock + rng.below(400) as i64 - 100,
                };
                (expire_at, cutoff)
            }
            Times::Long => {
                let expire_at = match rng.below(8) {
                    0 => NO_TTL,
                    1 => clock + rng.below(400) as i64,
                    _ => clock + 5_000 + rng.below(5_000) as i64,
                };
                let cutoff = match (step / 300) % 5 {
                    4 => clock + 5_000 + rng.below(5_000) as i64,
                    _ => clock,
                };
                (expire_at, cutoff)
            }
        }
    }
}

type Model = BTreeMap<(String, String), (String, i64)>;

fn live_in(model: &Model, room: &str, cutoff: i64) -> Vec<(String, String)> {
    model
        .range((room.to_string(), String::new())..)
        .take_while(|((r, _), _)| r == room)
        .filter(|(_, (_, at))| *at > cutoff)
        .map(|((_, u), (s, _))| (u.clone(), s.clone()))
        .collect()
}

fn live_count(model: &Model, room: &str, cutoff: i64) -> usize {
    model
        .range((room.to_string(), String::new())..)
        .take_while(|((r, _), _)| r == room)
        .filter(|(_, (_, at))| *at > cutoff)
        .count()
}

/// An id like a UUID, made from `n`: lowercase, uppercase, mixed case or with a character
/// that is not a hex digit, sharing long prefixes with the others.
fn uuid_like(n: u64) -> String {
    let id = format!("{:08x}-0000-4000-a{:03x}-{n:012x}", n % 3, n % 2);
    match n % 4 {
        0 => id.to_uppercase(),
        1 => id.replacen('a', "A", 1),
        2 => id.replacen('-', "_", 1),
        _ => id,
    }
}

/// What the index holds for a presence of the model: `socket` expiring at `expire_at`.
fn held_by(socket: &str, expire_at: i64) -> Presence {
    Presence {
        node: None,
        socket: socket.into(),
        expire_at,
    }
}

/// A model test run: `rooms` rooms of up to `users` users each, rooms counting per expiry
/// above `large` presences, the first room holding `prefill` users to begin with.
struct Run {
    seed: u64,
    prefill: u64,
    steps: u32,
    rooms: u64,
    users: u64,
    large: usize,
    times: Times,
}

/// One sweeper step or more at `cutoff`, each presence it finds checked against the model
/// and, three times in four, removed from both.
fn sweep_and_compare(
    index: &mut RoomIndex,
    model: &mut Model,
    rng: &mut Rng,
    cutoff: i64,
    step: u32,
) {
    let any_dead = model.values().any(|(_, at)| *at <= cutoff);
    let mut steps_left = model.len() + 2;
    loop {
        match index.first_dead(cutoff) {
            Step::Dead(dead) => {
                let key = (dead.room.to_string(), dead.user.to_string());
                let (s, at) = model.get(&key).expect("an indexed presence");
                assert_eq!(
                    (s.clone(), *at),
                    (dead.presence.socket.to_string(), dead.presence.expire_at),
                    "step {step}"
                );
                assert!(*at <= cutoff, "step {step}");
                if rng.below(4) > 0 {
                    assert!(index.remove(&dead.room, &key.1).is_some());
                    model.remove(&key);
                }
                break;
            }
            Step::Progress => {
                assert!(steps_left > 0, "step {step}: the sweeper never ends");
                steps_left -= 1;
                if rng.below(3) == 0 {
                    break;
                }
            }
            Step::Idle => {
                assert!(!any_dead, "step {step}: a dead presence was missed");
                break;
            }
        }
    }
}

/// The whole listing of `room`, read page by page, `page` presences a page, each page after
/// the last user of the one before.
fn in_pages(index: &mut RoomIndex, room: &str, cutoff: i64, page: usize) -> Vec<(String, String)> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let got = index.list(room, cutoff, page, after.as_deref());
        assert!(got.len() <= page);
        let last = got.last().map(|(u, _)| u.clone());
        let full = got.len() == page;
        pages.extend(got);
        match last {
            Some(last) if full => after = Some(last),
            _ => return pages,
        }
    }
}

/// Runs `run`: at each step one random operation on both the index and the model, and their
/// answers compared.
fn run_model(run: Run) {
    let Run {
        seed,
        prefill,
        steps,
        rooms,
        users,
        large,
        times,
    } = run;
    let mut index = RoomIndex::with_large_rooms_above(large);
    let mut model = Model::new();
    let mut rng = Rng(seed);
    let mut clock: i64 = 1_000;
    let mut was_large = BTreeSet::new();
    let mut left_large = 0;
    let mut was_split = BTreeSet::new();
    let mut left_split = 0;
    for n in 0..prefill {
        let (user, at) = (format!("u{n}"), clock + rng.below(400) as i64);
        index.upsert("r0", &user, "s1", at);
        model.insert(("r0".to_string(), user), ("s1".to_string(), at));
    }
    for step in 0..steps {
        let room = format!("r{}", rng.below(rooms));
        let n = rng.below(users);
        let user = match n % 8 {
            0 => format!("user-with-an-id-over-twenty-two-bytes-{n}"),
            1..=3 => uuid_like(n),
            4 => format!("{:08x}-{n}", n % 3),
            _ => format!("u{n}"),
        };
        let socket = match rng.below(6) {
            0 => "a-socket-id-longer-than-twenty-two-bytes".to_string(),
            1 => "Ab3_xY-9kLmN0pQrStU-".to_string(),
            2 => uuid_like(rng.below(users)),
            k => format!("s{k}"),
        };
        clock += rng.below(3) as i64;
        let (expire_at, cutoff) = times.pick(&mut rng, clock, step);
        let key = (room.clone(), user.clone());
        let held = model.get(&key).cloned();
        let draining = (step / 2500) % 2 == 1;
        match rng.below(13) {
            0..=2 if draining => {
                let got = index
                    .remove(&room, &user)
                    .map(|p| (p.socket.to_string(), p.expire_at));
                assert_eq!(got, model.remove(&key), "step {step}");
            }
            0 | 1 => {
                let want = match &held {
                    None => Prior::Absent,
                    Some((s, at)) if *s == socket => Prior::Same { expire_at: *at },
                    Some((s, at)) => Prior::Other(held_by(s, *at)),
                };
                let got = index.upsert(&room, &user, &socket, expire_at);
                assert_eq!(got, want, "step {step}");
                model.insert(key, (socket, expire_at));
            }
            2 => {
                let got = index.upsert_counted(
                    &room,
                    &user,
                    socket.as_str().into(),
                    expire_at,
                    Some(cutoff),
                );
                model.insert(key, (socket, expire_at));
                assert_eq!(got.1, live_count(&model, &room, cutoff), "step {step}");
            }
            3..=5 => {
                let socket = match (&held, rng.below(4)) {
                    (Some((s, _)), 0..=2) => s.clone(),
                    _ => socket,
                };
                let want = match &held {
                    Some((s, at)) if *s == socket && *at > cutoff => {
                        Refresh::Refreshed { previous: *at }
                    }
                    Some((s, at)) if *s == socket => Refresh::NotLive { expire_at: *at },
                    _ => Refresh::NotHeld,
                };
                let got = index.refresh(&room, &user, socket.as_str().into(), expire_at, cutoff);
                assert_eq!(got, want, "step {step}");
                if let Refresh::Refreshed { .. } = got {
                    model.insert(key, (socket, expire_at));
                }
            }
            6 => {
                let got = index.remove(&room, &user);
                let want = model.remove(&key).map(|(s, at)| held_by(&s, at));
                assert_eq!(got, want, "step {step}");
            }
            7 => {
                let got = index.remove_counted(&room, &user, cutoff);
                let want = model.remove(&key).map(|(s, at)| {
                    let count = live_count(&model, &room, cutoff);
                    (held_by(&s, at), count)
                });
                assert_eq!(got, want, "step {step}");
            }
            8 | 9 => {
                sweep_and_compare(&mut index, &mut model, &mut rng, cutoff, step);
            }
            10 => {
                let got = index.get(&room, &user).cloned();
                let want = held.map(|(s, at)| held_by(&s, at));
                assert_eq!(got, want, "step {step}");
            }
            11 => {
                let page = 1 + rng.below(7) as usize;
                let pages = in_pages(&mut index, &room, cutoff, page);
                assert_eq!(
                    pages,
                    live_in(&model, &room, cutoff),
                    "step {step}: pages of {page}"
                );
            }
            _ => {
                let limit = match rng.below(3) {
                    0 => usize::MAX,
                    _ => rng.below(6) as usize,
                };
                let after = match rng.below(3) {
                    0 => None,
                    1 => Some(user.clone()),
                    _ => Some(format!("u{}", rng.below(users))),
                };
                let want: Vec<(String, String)> = live_in(&model, &room, cutoff)
                    .into_iter()
                    .filter(|(u, _)| after.as_ref().is_none_or(|a| u > a))
                    .take(limit)
                    .collect();
                let got = index.list(&room, cutoff, limit, after.as_deref());
                assert_eq!(got, want, "step {step}");
            }
        }
        if let Some(state) = index.room(&room) {
            if state.expiries.is_some() {
                was_large.insert(room.clone());
            } else if was_large.remove(&room) {
                left_large += 1;
            }
            if state.order.block_lens().len() > 1 {
                was_split.insert(room.clone());
            } else if was_split.remove(&room) {
                left_split += 1;
            }
        }
        if step % 3 == 0 {
            index.assert_consistent();
        }
        if rng.below(2) == 0 {
            let want = live_count(&model, &room, cutoff);
            assert_eq!(index.count(&room, cutoff), want, "step {step}");
        }
        if step % 7 == 0 {
            let listed = index.list(&room, cutoff, usize::MAX, None);
            assert_eq!(listed, live_in(&model, &room, cutoff), "step {step}");
        }
        assert_eq!(index.live() + index.backlog(), model.len());
        if step % 31 == 0 {
            let all_live = model.values().filter(|(_, at)| *at > cutoff).count();
            let want = (all_live, model.len() - all_live);
            assert_eq!(totals_at(&mut index, cutoff), want, "step {step}");
        }
        assert_eq!(index.entries(), model.len(), "step {step}");
        assert_eq!(index.is_empty(), model.is_empty());
        let rooms: BTreeSet<&String> = model.keys().map(|(r, _)| r).collect();
        assert_eq!(index.rooms(), rooms.len(), "step {step}");
    }
    index.assert_consistent();
    if prefill == 0 && large * 4 < users as usize {
        assert!(left_large > 0, "rooms went large and back");
    }
    if prefill == 0 && users as usize > ORDER_BLOCK * 2 {
        assert!(left_split > 0, "orders went past one block and back");
    }
}

/// Runs the model test from empty rooms, 60,000 steps, once for each (seed, rooms, users,
/// large).
fn run_from_empty(times: Times, runs: &[(u64, u64, u64, usize)]) {
    for &(seed, rooms, users, large) in runs {
        run_model(Run {
            seed,
            prefill: 0,
            steps: 60_000,
            rooms,
            users,
            large,
            times,
        });
    }
}

#[test]
fn matches_a_naive_model_under_random_operations() {
    run_from_empty(
        Times::Scattered,
        &[
            (0x2545_f491_4f6c_dd1d, 8, 40, LARGE_ROOM),
            (0x9e37_79b9_7f4a_7c15, 3, 300, LARGE_ROOM),
            (0x5851_f42d_4c95_7f2d, 3, 60, 12),
        ],
    );
}

#[test]
fn matches_a_naive_model_under_a_moving_clock() {
    run_from_empty(
        Times::Clock,
        &[
            (0xd1b5_4a32_d192_ed03, 6, 60, LARGE_ROOM),
            (0x8cb9_2ba7_2f3d_8dd7, 2, 500, LARGE_ROOM),
            (0x1405_7b7e_f767_814f, 2, 80, 16),
        ],
    );
}

#[test]
fn matches_a_naive_model_under_jumping_cutoffs() {
    run_from_empty(Times::Jumps, &[(0x6c07_8965_2f3a_1b4d, 4, 100, 20)]);
}

/// Rooms whose user order goes past one block and back, with ceilings on the blocks, under
/// cutoffs that jump back and forth.
#[test]
fn matches_a_naive_model_across_block_splits() {
    run_from_empty(Times::Long, &[(0x2f6b_0c61_9d3e_a457, 1, 4000, LARGE_ROOM)]);
}

/// A room of about 4,000 presences that shrinks as the sweeper removes them: the slots and
/// the queue span several chunks and give them back, the users are in sub-tables, the order
/// in many blocks, and the room counts per expiry.
#[test]
fn matches_a_naive_model_in_a_large_room() {
    run_model(Run {
        seed: 0x3c6e_f372_fe94_f82b,
        prefill: 4150,
        steps: 12_000,
        rooms: 1,
        users: 8000,
        large: LARGE_ROOM,
        times: Times::Jumps,
    });
}
