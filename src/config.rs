//! The module configs (`presence.ttl`, `presence.stale-after`, `presence.sweep-interval`,
//! `presence.events`, `presence.max-data`), settable from `loadmodule`, `redis.conf`,
//! `MODULE LOADEX` and `CONFIG SET` (the TTL only to the value it already has). Each is named,
//! bounded and given its default once, in [`Setting::spec`], which both the registration and
//! the module arguments read.
//!
//! The values live in atomics, not in the module's state (`state.rs`): Redis's config
//! callbacks write them, at load and on `CONFIG SET`, possibly while the state is in use. So
//! does the server's mode (cluster or not, set once at load), which the callback of
//! `presence.events` reads.

use crate::ffi::context::{self, now_ms};
use crate::state;
use presence_core::events::Channels;
use presence_core::liveness::{Liveness, Moment};
use redis_module::configuration::{
    register_enum_configuration, register_i64_configuration, ConfigurationContext,
    ConfigurationFlags, ConfigurationValue, EnumConfigurationValue,
};
use redis_module::{Context, RedisError};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// `presence.ttl`: the TTL, in seconds, a join or a heartbeat gives a presence key.
pub static TTL: TtlConfig = TtlConfig {
    value: AtomicI64::new(DEFAULT_TTL),
    fixed: AtomicBool::new(false),
};
/// `presence.stale-after`: seconds without a heartbeat after which a presence is not live.
pub static STALE_AFTER: AtomicI64 = AtomicI64::new(DEFAULT_STALE_AFTER);
/// `presence.sweep-interval`: milliseconds between two sweeps.
pub static SWEEP_INTERVAL: AtomicI64 = AtomicI64::new(DEFAULT_SWEEP_INTERVAL);

/// `presence.max-data`: the most bytes of data a presence may carry (0 refuses data).
pub static MAX_DATA: AtomicI64 = AtomicI64::new(DEFAULT_MAX_DATA);

/// `presence.events`: which channels events go to.
pub static EVENTS: EventsConfig = EventsConfig(AtomicI64::new(Events::Auto as i64));

/// True on a server with `cluster-enabled yes` (set at load): `auto` events mean the rooms'
/// channels there.
static CLUSTER: AtomicBool = AtomicBool::new(false);

/// Default of `presence.ttl` (6 hours: `SET … EX 21600`).
pub const DEFAULT_TTL: i64 = 21600;
/// Default of `presence.stale-after` (three missed 30 s heartbeats).
pub const DEFAULT_STALE_AFTER: i64 = 90;
/// Default of `presence.sweep-interval`.
pub const DEFAULT_SWEEP_INTERVAL: i64 = 1000;
/// Default of `presence.max-data`, in bytes.
pub const DEFAULT_MAX_DATA: i64 = 1024;
/// The largest `presence.max-data` accepted, in bytes.
pub const MAX_MAX_DATA: i64 = 65536;
/// The largest TTL and staleness window accepted: ten years, in seconds.
pub const MAX_SECONDS: i64 = 315_360_000;
/// The largest sweep interval accepted: one hour, in milliseconds.
pub const MAX_SWEEP_INTERVAL: i64 = 3_600_000;

/// Registers the configs and applies the values Redis holds for them (`redis.conf`
/// lines, `MODULE LOADEX … CONFIG`); `on_sweep_interval` runs after each change of
/// `presence.sweep-interval`. False when Redis refused a value: the load must then fail
/// before anything else is set up, since Redis leaves a module whose configs were refused
/// half-loaded.
pub fn register_and_load(ctx: &Context, on_sweep_interval: fn()) -> bool {
    // The library stays mapped after a refused load (a Rust library with thread-local
    // destructors is never unloaded), so a load that follows one finds its statics as that one
    // left them: the TTL takes any value again until this load is over.
    TTL.fixed.store(false, Ordering::Relaxed);
    register_i64(ctx, Setting::Ttl, &TTL, None);
    register_i64(ctx, Setting::StaleAfter, &STALE_AFTER, None);
    register_i64(
        ctx,
        Setting::SweepInterval,
        &SWEEP_INTERVAL,
        Some(Box::new(move |_, _, _| on_sweep_interval())),
    );
    register_i64(ctx, Setting::MaxData, &MAX_DATA, None);
    register_enum_configuration(
        ctx,
        Setting::Events.spec().short_name(),
        &EVENTS,
        Events::Auto,
        ConfigurationFlags::DEFAULT,
        None,
    );
    let loaded = context::load_configs(ctx);
    TTL.fixed.store(true, Ordering::Relaxed);
    loaded
}

/// What is called after the config kept in a `T` changed.
type OnChange<T> = Box<dyn Fn(&ConfigurationContext, &str, &'static T)>;

/// Registers the integer config `setting`, kept in `value`, as [`Setting::spec`] describes it.
fn register_i64<T: ConfigurationValue<i64> + 'static>(
    ctx: &Context,
    setting: Setting,
    value: &'static T,
    on_changed: Option<OnChange<T>>,
) {
    let spec = setting.spec();
    register_i64_configuration(
        ctx,
        spec.short_name(),
        value,
        spec.default,
        spec.min,
        spec.max,
        ConfigurationFlags::DEFAULT,
        on_changed,
    );
}

/// A config as the table ([`Setting::spec`]) describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The full name, `presence.<name>`.
    pub name: &'static str,
    /// The value it has until set.
    pub default: i64,
    /// The least value accepted.
    pub min: i64,
    /// The greatest value accepted.
    pub max: i64,
}

impl Spec {
    /// The name without `presence.`, as Redis registers it for the module.
    pub fn short_name(&self) -> &'static str {
        self.name.strip_prefix("presence.").unwrap_or(self.name)
    }
}

/// Where `presence.ttl` lives: the value, and whether the load is over. Liveness is derived
/// from the TTL, so once loaded it only accepts the value it already has: an operator's
/// tooling that sets every config to its current value (`CONFIG SET` of what `CONFIG GET`
/// showed) works, and any change is refused with an error that says why.
pub struct TtlConfig {
    value: AtomicI64,
    fixed: AtomicBool,
}

impl TtlConfig {
    /// The current value, in seconds.
    pub fn value(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    fn store(&self, value: i64) {
        self.value.store(value, Ordering::Relaxed);
    }
}

impl ConfigurationValue<i64> for TtlConfig {
    fn get(&self, _: &ConfigurationContext) -> i64 {
        self.value()
    }

    fn set(&self, _: &ConfigurationContext, value: i64) -> Result<(), RedisError> {
        let current = self.value();
        if self.fixed.load(Ordering::Relaxed) && value != current {
            return Err(RedisError::String(format!(
                "presence.ttl is fixed at load (liveness is derived from it): it stays {current}; \
                 change it in redis.conf or the module arguments and restart"
            )));
        }
        self.store(value);
        Ok(())
    }
}

/// The values of `presence.events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// The rooms' channels in cluster mode, the global channels on a standalone server.
    Auto = 0,
    /// `__presence@<db>__:<event>` only.
    Global = 1,
    /// `__presence@<db>__:{<room>}` only (but `node-down`, and a database's `reset`).
    Room = 2,
    /// Both.
    Both = 3,
}

/// The names of [`Events`], in the order of their numbers.
const EVENTS_NAMES: [&str; 4] = ["auto", "global", "room", "both"];

impl Events {
    /// The channels this value means on a server of this mode.
    pub fn channels(self, cluster: bool) -> Channels {
        match self {
            Events::Auto if cluster => Channels::Room,
            Events::Auto | Events::Global => Channels::Global,
            Events::Room => Channels::Room,
            Events::Both => Channels::Both,
        }
    }

    fn from_i64(value: i64) -> Option<Events> {
        [Events::Auto, Events::Global, Events::Room, Events::Both]
            .into_iter()
            .find(|e| *e as i64 == value)
    }

    fn named(name: &[u8]) -> Option<Events> {
        let name = name.to_ascii_lowercase();
        let at = EVENTS_NAMES.iter().position(|n| n.as_bytes() == name)?;
        Events::from_i64(at as i64)
    }
}

impl TryFrom<i32> for Events {
    type Error = RedisError;

    fn try_from(value: i32) -> Result<Events, RedisError> {
        Events::from_i64(value.into()).ok_or(RedisError::Str("ERR unknown presence.events value"))
    }
}

impl From<Events> for i32 {
    fn from(value: Events) -> i32 {
        value as i32
    }
}

impl EnumConfigurationValue for Events {
    fn get_options(&self) -> (Vec<String>, Vec<i32>) {
        let names = EVENTS_NAMES.iter().map(|n| n.to_string()).collect();
        (names, (0..EVENTS_NAMES.len() as i32).collect())
    }
}

/// Where `presence.events` lives: a number Redis's config callbacks write.
pub struct EventsConfig(AtomicI64);

impl EventsConfig {
    /// The current value.
    pub fn value(&self) -> Events {
        Events::from_i64(self.0.load(Ordering::Relaxed)).unwrap_or(Events::Auto)
    }

    fn store(&self, value: Events) {
        self.0.store(value as i64, Ordering::Relaxed);
        apply_channels();
    }
}

impl ConfigurationValue<Events> for EventsConfig {
    fn get(&self, _: &ConfigurationContext) -> Events {
        self.value()
    }

    fn set(&self, _: &ConfigurationContext, value: Events) -> Result<(), RedisError> {
        self.store(value);
        Ok(())
    }
}

/// The channels events go to now.
pub fn channels() -> Channels {
    EVENTS.value().channels(CLUSTER.load(Ordering::Relaxed))
}

/// True on a server with `cluster-enabled yes`.
pub fn is_cluster() -> bool {
    CLUSTER.load(Ordering::Relaxed)
}

/// Records the server's mode, which `auto` events depend on.
pub fn set_cluster(cluster: bool) {
    CLUSTER.store(cluster, Ordering::Relaxed);
    apply_channels();
}

/// Tells the state which channels events go to (a `reset` fans out to the rooms' channels).
pub fn apply_channels() {
    let channels = channels();
    state::unless_busy(|s| s.channels = channels);
}

/// The liveness rule for the current configs.
pub fn liveness() -> Liveness {
    Liveness::new(TTL.value(), STALE_AFTER.load(Ordering::Relaxed))
}

/// The liveness rule's moment now: Redis's clock and the cutoff then.
pub fn moment_now() -> Moment {
    liveness().at(now_ms())
}

/// The most bytes of data a presence may carry now (`presence.max-data`).
pub fn max_data() -> usize {
    MAX_DATA.load(Ordering::Relaxed).clamp(0, MAX_MAX_DATA) as usize
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
    /// `presence.events`.
    Events,
    /// `presence.max-data`.
    MaxData,
}

impl Setting {
    /// Every config.
    const ALL: [Setting; 5] = [
        Setting::Ttl,
        Setting::StaleAfter,
        Setting::SweepInterval,
        Setting::Events,
        Setting::MaxData,
    ];

    /// The table of the configs: name, default and bounds.
    pub fn spec(self) -> Spec {
        let (name, default, min, max) = match self {
            Setting::Ttl => ("presence.ttl", DEFAULT_TTL, 1, MAX_SECONDS),
            Setting::StaleAfter => ("presence.stale-after", DEFAULT_STALE_AFTER, 0, MAX_SECONDS),
            Setting::SweepInterval => (
                "presence.sweep-interval",
                DEFAULT_SWEEP_INTERVAL,
                1,
                MAX_SWEEP_INTERVAL,
            ),
            Setting::Events => (
                "presence.events",
                Events::Auto as i64,
                0,
                EVENTS_NAMES.len() as i64 - 1,
            ),
            Setting::MaxData => ("presence.max-data", DEFAULT_MAX_DATA, 0, MAX_MAX_DATA),
        };
        Spec {
            name,
            default,
            min,
            max,
        }
    }

    fn named(name: &[u8]) -> Option<Setting> {
        let name = name.to_ascii_lowercase();
        let short = name.strip_prefix(b"presence.").unwrap_or(&name);
        Setting::ALL
            .into_iter()
            .find(|setting| setting.spec().short_name().as_bytes() == short)
    }

    fn range(self) -> (i64, i64) {
        let spec = self.spec();
        (spec.min, spec.max)
    }

    /// The value a module argument gives, when valid.
    fn parse(self, value: &[u8]) -> Option<i64> {
        if self == Setting::Events {
            return Events::named(value).map(|e| e as i64);
        }
        let (min, max) = self.range();
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| (min..=max).contains(v))
    }

    /// What a valid value is, for the error of an invalid one.
    fn expected(self) -> String {
        let (min, max) = self.range();
        match self {
            Setting::Events => "one of auto, global, room, both".to_string(),
            _ => format!("an integer from {min} to {max}"),
        }
    }

    /// The config's full name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Stores a value.
    pub fn store(self, value: i64) {
        let target = match self {
            Setting::Ttl => {
                TTL.store(value);
                return;
            }
            Setting::StaleAfter => &STALE_AFTER,
            Setting::SweepInterval => &SWEEP_INTERVAL,
            Setting::MaxData => &MAX_DATA,
            Setting::Events => {
                EVENTS.store(Events::from_i64(value).unwrap_or(Events::Auto));
                return;
            }
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
            setting
                .parse(pair[1])
                .map(|v| (setting, v))
                .ok_or_else(|| format!("{} must be {}", setting.name(), setting.expected()))
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
        assert_eq!(
            parse_module_args(&[b"max-data", b"0"]),
            Ok(vec![(Setting::MaxData, 0)])
        );
        assert_eq!(
            parse_module_args(&[b"presence.max-data", b"65537"]),
            Err("presence.max-data must be an integer from 0 to 65536".to_string())
        );
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
        assert_eq!(
            parse_module_args(&[b"events", b"sideways"]),
            Err("presence.events must be one of auto, global, room, both".to_string())
        );
    }

    #[test]
    fn events_name_their_channels() {
        assert_eq!(
            parse_module_args(&[b"presence.events", b"ROOM"]),
            Ok(vec![(Setting::Events, Events::Room as i64)])
        );
        assert_eq!(Events::Auto.channels(true), Channels::Room);
        assert_eq!(Events::Auto.channels(false), Channels::Global);
        assert_eq!(Events::Both.channels(false), Channels::Both);
        assert_eq!(Events::Global.channels(true), Channels::Global);
    }
}
