//! The module configs (`presence.ttl`, `presence.stale-after`, `presence.sweep-interval`),
//! settable from `loadmodule`, `redis.conf`, `MODULE LOADEX` and (but for the TTL) `CONFIG SET`.

use crate::api;
use crate::sweeper;
use presence_core::liveness::{Liveness, Moment};
use redis_module::configuration::{register_i64_configuration, ConfigurationFlags};
use redis_module::Context;
use std::sync::atomic::{AtomicI64, Ordering};

/// `presence.ttl`: the TTL, in seconds, a join or a heartbeat gives a presence key.
pub static TTL: AtomicI64 = AtomicI64::new(DEFAULT_TTL);
/// `presence.stale-after`: seconds without a heartbeat after which a presence is not live.
pub static STALE_AFTER: AtomicI64 = AtomicI64::new(DEFAULT_STALE_AFTER);
/// `presence.sweep-interval`: milliseconds between two sweeps.
pub static SWEEP_INTERVAL: AtomicI64 = AtomicI64::new(DEFAULT_SWEEP_INTERVAL);

/// Default of `presence.ttl` (6 hours: `SET … EX 21600`).
pub const DEFAULT_TTL: i64 = 21600;
/// Default of `presence.stale-after` (three missed 30 s heartbeats).
pub const DEFAULT_STALE_AFTER: i64 = 90;
/// Default of `presence.sweep-interval`.
pub const DEFAULT_SWEEP_INTERVAL: i64 = 1000;
/// The largest TTL and staleness window accepted: ten years, in seconds.
pub const MAX_SECONDS: i64 = 315_360_000;
/// The largest sweep interval accepted: one hour, in milliseconds.
pub const MAX_SWEEP_INTERVAL: i64 = 3_600_000;

/// Registers the three configs and applies the values Redis holds for them (`redis.conf`
/// lines, `MODULE LOADEX … CONFIG`). False when Redis refused a value: the load must then fail
/// before anything else is set up, since Redis leaves a module whose configs were refused
/// half-loaded.
pub fn register_and_load(ctx: &Context) -> bool {
    register_i64_configuration(
        ctx,
        "ttl",
        &TTL,
        DEFAULT_TTL,
        1,
        MAX_SECONDS,
        ConfigurationFlags::IMMUTABLE,
        None,
    );
    register_i64_configuration(
        ctx,
        "stale-after",
        &STALE_AFTER,
        DEFAULT_STALE_AFTER,
        0,
        MAX_SECONDS,
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_i64_configuration(
        ctx,
        "sweep-interval",
        &SWEEP_INTERVAL,
        DEFAULT_SWEEP_INTERVAL,
        1,
        MAX_SWEEP_INTERVAL,
        ConfigurationFlags::DEFAULT,
        Some(Box::new(|_, _, _| sweeper::rearm())),
    );
    api::load_configs(ctx)
}

/// The liveness rule for the current configs.
pub fn liveness() -> Liveness {
    Liveness::new(
        TTL.load(Ordering::Relaxed),
        STALE_AFTER.load(Ordering::Relaxed),
    )
}

/// The liveness rule's moment now: Redis's clock and the cutoff then.
pub fn moment_now() -> Moment {
    liveness().at(crate::store::now_ms())
}

/// The current sweep interval in milliseconds.
pub fn sweep_interval_ms() -> i64 {
    SWEEP_INTERVAL.load(Ordering::Relaxed)
}

/// One config given as a module argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `presence.ttl`.
    Ttl,
    /// `presence.stale-after`.
    StaleAfter,
    /// `presence.sweep-interval`.
    SweepInterval,
}

impl Setting {
    fn named(name: &[u8]) -> Option<Setting> {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix(b"presence.").unwrap_or(&name) {
            b"ttl" => Some(Setting::Ttl),
            b"stale-after" => Some(Setting::StaleAfter),
            b"sweep-interval" => Some(Setting::SweepInterval),
            _ => None,
        }
    }

    fn range(self) -> (i64, i64) {
        match self {
            Setting::Ttl => (1, MAX_SECONDS),
            Setting::StaleAfter => (0, MAX_SECONDS),
            Setting::SweepInterval => (1, MAX_SWEEP_INTERVAL),
        }
    }

    /// The config's full name.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Ttl => "presence.ttl",
            Setting::StaleAfter => "presence.stale-after",
            Setting::SweepInterval => "presence.sweep-interval",
        }
    }

    /// Stores a value.
    pub fn store(self, value: i64) {
        let target = match self {
            Setting::Ttl => &TTL,
            Setting::StaleAfter => &STALE_AFTER,
            Setting::SweepInterval => &SWEEP_INTERVAL,
        };
        target.store(value, Ordering::Relaxed);
    }
}

/// Parses module arguments: `name value` pairs, the name with or without `presence.`.
/// Staleness is never checked against the TTL here: any order of arguments loads.
pub fn parse_module_args(args: &[&[u8]]) -> Result<Vec<(Setting, i64)>, String> {
    if !args.len().is_multiple_of(2) {
        return Err("module arguments must be name value pairs".to_string());
    }
    args.chunks(2)
        .map(|pair| {
            let name = String::from_utf8_lossy(pair[0]);
            let setting = Setting::named(pair[0])
                .ok_or_else(|| format!("unknown module argument '{name}'"))?;
            let (min, max) = setting.range();
            std::str::from_utf8(pair[1])
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| (min..=max).contains(v))
                .map(|v| (setting, v))
                .ok_or_else(|| format!("{} must be an integer from {min} to {max}", setting.name()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_names_in_any_order() {
        assert_eq!(
            parse_module_args(&[b"presence.stale-after", b"99999", b"ttl", b"5"]),
            Ok(vec![(Setting::StaleAfter, 99999), (Setting::Ttl, 5)])
        );
        assert_eq!(
            parse_module_args(&[b"PRESENCE.SWEEP-INTERVAL", b"50"]),
            Ok(vec![(Setting::SweepInterval, 50)])
        );
        assert_eq!(parse_module_args(&[]), Ok(vec![]));
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(parse_module_args(&[b"ttl"]).is_err());
        assert_eq!(
            parse_module_args(&[b"colour", b"1"]),
            Err("unknown module argument 'colour'".to_string())
        );
        assert_eq!(
            parse_module_args(&[b"ttl", b"0"]),
            Err("presence.ttl must be an integer from 1 to 315360000".to_string())
        );
        assert!(parse_module_args(&[b"stale-after", b"-1"]).is_err());
        assert!(parse_module_args(&[b"sweep-interval", b"x"]).is_err());
    }
}
