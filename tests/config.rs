//! The module configs: defaults, CONFIG SET, module arguments in any order, refusals, and the
//! cluster key form.

use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::{free_port, module_path, server_binary, wait_for, Options, Server, TempDir};

#[test]
fn defaults_and_config_set() {
    let server = Server::start();
    let mut c = server.conn();
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.*"])
            .chunks(2)
            .map(|p| format!("{}={}", p[0], p[1]))
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "presence.events=auto",
            "presence.max-data=1024",
            "presence.stale-after=90",
            "presence.sweep-interval=1000",
            "presence.ttl=21600"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert_eq!(
        c.text(&["CONFIG", "SET", "presence.stale-after", "30"])
            .as_deref(),
        Some("OK")
    );
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.stale-after"]),
        ["presence.stale-after", "30"]
    );
    for (name, value) in [
        ("presence.stale-after", "-1"),
        ("presence.stale-after", "abc"),
        ("presence.sweep-interval", "0"),
        ("presence.ttl", "100"),
    ] {
        let error = c.err(&["CONFIG", "SET", name, value]);
        assert!(error.starts_with("ERR"), "{name} {value}: {error}");
    }
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.ttl"]),
        ["presence.ttl", "21600"]
    );
}

/// The TTL is fixed at load, but setting it to the value it has is accepted, so that tooling
/// that writes back every config `CONFIG GET *` showed (and Redis's own test suite) works.
#[test]
fn the_ttl_accepts_its_own_value_and_refuses_any_other() {
    let server = Server::with(Options::default().module("presence.ttl", "300"));
    let mut c = server.conn();
    assert_eq!(
        c.text(&["CONFIG", "SET", "presence.ttl", "300"]).as_deref(),
        Some("OK")
    );
    let refused = c.err(&["CONFIG", "SET", "presence.ttl", "301"]);
    assert!(
        refused.starts_with("ERR ")
            && refused.ends_with(
                "presence.ttl is fixed at load (liveness is derived from it): it stays 300; \
                 change it in redis.conf or the module arguments and restart"
            ),
        "{refused}"
    );
    let pairs = c.strings(&["CONFIG", "GET", "presence.*"]);
    let mut set = vec!["CONFIG".to_string(), "SET".to_string()];
    set.extend(pairs.iter().cloned());
    assert_eq!(c.text(&set).as_deref(), Some("OK"), "{pairs:?}");
    assert_eq!(c.strings(&["CONFIG", "GET", "presence.*"]), pairs);
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    assert!((250..=300).contains(&c.int(&["TTL", "room:presence:r:u"])));
}

#[test]
fn module_arguments_load_in_any_order() {
    let server = Server::with(
        Options::default()
            .module("presence.stale-after", "99999")
            .module("presence.ttl", "50")
            .module("sweep-interval", "20"),
    );
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
    assert!((25..=50).contains(&c.int(&["TTL", "room:presence:r:u"])));
    assert_eq!(
        c.strings(&["CONFIG", "GET", "presence.stale-after"]),
        ["presence.stale-after", "99999"]
    );
    assert_eq!(c.int(&["PRESENCE.COUNT", "r"]), 1);
}

#[test]
fn a_stale_after_at_or_above_the_ttl_turns_staleness_off() {
    for stale_after in [30, 40] {
        let server = Server::with(
            Options::default()
                .module("presence.ttl", "30")
                .fast(stale_after, 50),
        );
        let mut c = server.conn();
        c.int(&["PRESENCE.JOIN", "r", "u", "s"]);
        // 3 s left of a 30 s TTL: long stale with any staleness window, live without one.
        c.int(&["PEXPIRE", "room:presence:r:u", "3000"]);
        assert_eq!(
            c.int(&["PRESENCE.COUNT", "r"]),
            1,
            "stale-after {stale_after}"
        );
        assert_eq!(c.strings(&["PRESENCE.LIST", "r"]), ["u"]);
        wait_for(Duration::from_secs(30), "expiry", || {
            (c.int(&["PRESENCE.COUNT", "r"]) == 0 && c.int(&["DBSIZE"]) == 0).then_some(())
        });
    }
}

#[test]
fn bad_module_arguments_refuse_to_load_with_a_clear_log_line() {
    for (args, line) in [
        (
            vec!["colour", "blue"],
            "presence: unknown module argument 'colour'",
        ),
        (
            vec!["presence.ttl", "0"],
            "presence: presence.ttl must be an integer from 1 to 315360000",
        ),
        (
            vec!["presence.ttl"],
            "presence: module arguments must be name value pairs",
        ),
    ] {
        let dir = TempDir::new();
        let status = Command::new(server_binary())
            .args(["--port", &free_port().to_string(), "--save", "", "--dir"])
            .arg(dir.path())
            .args(["--logfile", "server.log", "--loadmodule"])
            .arg(module_path())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run server");
        assert!(!status.success(), "{args:?} loaded");
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        assert!(log.contains(line), "{args:?}: {log}");
    }
}

#[test]
fn cluster_mode_puts_the_room_in_a_hash_tag() {
    let server = Server::with(Options::default().config("cluster-enabled", "yes"));
    let mut c = server.conn();
    c.call(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    wait_for(Duration::from_secs(20), "the cluster state", || {
        (c.info_field("cluster", "cluster_enabled") == "1"
            && c.text(&["CLUSTER", "INFO"])
                .unwrap_or_default()
                .contains("cluster_state:ok"))
        .then_some(())
    });
    assert_eq!(c.int(&["PRESENCE.JOIN", "123", "45", "s"]), 1);
    assert_eq!(c.strings(&["KEYS", "*"]), ["room:presence:{123}:45"]);
    assert_eq!(
        c.int(&["CLUSTER", "KEYSLOT", "123"]),
        c.int(&["CLUSTER", "KEYSLOT", "room:presence:{123}:45"])
    );
    c.call(&["SET", "room:presence:{123}:46", "t", "EX", "21600"]);
    c.call(&["SET", "room:presence:123:47", "t", "EX", "21600"]);
    assert_eq!(c.strings(&["PRESENCE.LIST", "123"]), ["45", "46"]);
}
