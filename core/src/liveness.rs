//! The liveness rule: the one place that decides whether a presence is in its room.
//!
//! A presence is live while its key exists and its remaining TTL is above
//! `ttl - stale_after`, that is while its last heartbeat (which resets the TTL to the full
//! `ttl`) is younger than `stale_after`. A `stale_after` of 0, or one at or above `ttl`, turns
//! staleness off: the presence is live until its TTL runs out. A key without a TTL is never
//! live. Everything is expressed on the key's absolute expiry (`expire_at`, Unix ms), so that
//! the rule is one comparison against a cutoff computed once per read.
//!
//! One clause more: a presence whose socket names a node (`<node>/<socket>`) is live only while
//! that node's lease key exists with a TTL that has not run out ([`Moment::lease_live`]); the
//! leases themselves are followed in [`crate::leases`].

/// `expire_at` of a key that has no TTL.
pub const NO_TTL: i64 = i64::MIN;

/// Why a presence is not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// The key has no TTL.
    NoTtl,
    /// The TTL ran out (the key is logically expired).
    Expired,
    /// No heartbeat for longer than `stale_after`.
    Stale,
    /// The presence is held through a node whose lease ended.
    NodeDown,
}

/// One moment at which liveness is judged: the time, and the cutoff of the rule then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Milliseconds since the Unix epoch: a lease is live while it expires after this.
    pub now: i64,
    /// A presence's key is live while it expires after this ([`Liveness::cutoff`]).
    pub cutoff: i64,
}

impl Moment {
    /// Why a key expiring at `expire_at` ([`NO_TTL`] for none) is not live now, or `None` when
    /// it is (the node clause aside).
    pub fn dead_reason(&self, expire_at: i64) -> Option<DeadReason> {
        if expire_at == NO_TTL {
            Some(DeadReason::NoTtl)
        } else if expire_at <= self.now {
            Some(DeadReason::Expired)
        } else if expire_at <= self.cutoff {
            Some(DeadReason::Stale)
        } else {
            None
        }
    }

    /// True when a lease expiring at `expire_at` ([`NO_TTL`] for none) is live now.
    pub fn lease_live(&self, expire_at: i64) -> bool {
        expire_at != NO_TTL && expire_at > self.now
    }
}

/// A source of the current time in Unix milliseconds (Redis's clock in the module, a manual one
/// in tests).
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The rule, for one `(ttl, stale_after)` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    ttl_ms: i64,
    stale_after_ms: i64,
}

impl Liveness {
    /// The rule for a TTL and a staleness window, both in seconds.
    pub fn new(ttl_s: i64, stale_after_s: i64) -> Self {
        Liveness {
            ttl_ms: ttl_s.saturating_mul(1000),
            stale_after_ms: stale_after_s.saturating_mul(1000),
        }
    }

    /// True when staleness applies (`0 < stale_after < ttl`).
    pub fn staleness_on(&self) -> bool {
        self.stale_after_ms > 0 && self.stale_after_ms < self.ttl_ms
    }

    /// The expiry a join or a heartbeat at `now_ms` gives a key.
    pub fn expire_at_after_beat(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.ttl_ms)
    }

    /// A presence is live exactly when its `expire_at` is above this cutoff.
    pub fn cutoff(&self, now_ms: i64) -> i64 {
        if self.staleness_on() {
            now_ms.saturating_add(self.ttl_ms - self.stale_after_ms)
        } else {
            now_ms
        }
    }

    /// The moment `now_ms`, with its cutoff.
    pub fn at(&self, now_ms: i64) -> Moment {
        Moment {
            now: now_ms,
            cutoff: self.cutoff(now_ms),
        }
    }

    /// True when a key expiring at `expire_at` ([`NO_TTL`] for none) is live at `now_ms`.
    pub fn is_live(&self, expire_at: i64, now_ms: i64) -> bool {
        expire_at != NO_TTL && expire_at > self.cutoff(now_ms)
    }

    /// Why a key expiring at `expire_at` is not live at `now_ms`, or `None` when it is live.
    pub fn dead_reason(&self, expire_at: i64, now_ms: i64) -> Option<DeadReason> {
        self.at(now_ms).dead_reason(expire_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct ManualClock(Cell<i64>);

    impl Clock for ManualClock {
        fn now_ms(&self) -> i64 {
            self.0.get()
        }
    }

    impl ManualClock {
        fn advance(&self, ms: i64) {
            self.0.set(self.0.get() + ms);
        }
    }

    #[test]
    fn live_until_stale_after_without_a_beat() {
        let rule = Liveness::new(21600, 90);
        let clock = ManualClock(Cell::new(1_000_000));
        let expire_at = rule.expire_at_after_beat(clock.now_ms());
        assert!(rule.is_live(expire_at, clock.now_ms()));
        clock.advance(89_999);
        assert!(rule.is_live(expire_at, clock.now_ms()));
        clock.advance(1);
        assert!(!rule.is_live(expire_at, clock.now_ms()));
        assert_eq!(
            rule.dead_reason(expire_at, clock.now_ms()),
            Some(DeadReason::Stale)
        );
    }

    #[test]
    fn a_beat_restarts_the_window() {
        let rule = Liveness::new(21600, 90);
        let clock = ManualClock(Cell::new(0));
        let mut expire_at = rule.expire_at_after_beat(clock.now_ms());
        for _ in 0..1000 {
            clock.advance(30_000);
            assert!(rule.is_live(expire_at, clock.now_ms()));
            expire_at = rule.expire_at_after_beat(clock.now_ms());
        }
    }

    #[test]
    fn staleness_off_means_live_until_the_ttl_runs_out() {
        for stale in [0, 10, 11] {
            let rule = Liveness::new(10, stale);
            assert!(!rule.staleness_on());
            let expire_at = rule.expire_at_after_beat(0);
            assert!(rule.is_live(expire_at, 9_999));
            assert!(!rule.is_live(expire_at, 10_000));
            assert_eq!(
                rule.dead_reason(expire_at, 10_000),
                Some(DeadReason::Expired)
            );
        }
    }

    #[test]
    fn a_key_without_ttl_is_never_live() {
        let rule = Liveness::new(21600, 90);
        assert!(!rule.is_live(NO_TTL, 0));
        assert_eq!(rule.dead_reason(NO_TTL, 0), Some(DeadReason::NoTtl));
    }

    #[test]
    fn a_short_raw_ttl_is_stale_at_once() {
        let rule = Liveness::new(21600, 90);
        assert_eq!(rule.dead_reason(100_000, 0), Some(DeadReason::Stale));
        assert_eq!(rule.dead_reason(0, 0), Some(DeadReason::Expired));
        assert_eq!(rule.dead_reason(rule.expire_at_after_beat(0), 0), None);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let rule = Liveness::new(i64::MAX, i64::MAX);
        assert!(!rule.staleness_on());
        assert_eq!(rule.cutoff(5), 5);
        assert_eq!(rule.expire_at_after_beat(5), i64::MAX);
    }
}
