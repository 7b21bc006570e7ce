//! AOF: the module's writes replay to the same presences, and the dead ones still go.

use std::time::Duration;
use test_support::{wait_for, Options, Server};

#[test]
fn aof_rewrite_and_restart_bring_back_the_same_presences() {
    let server = Server::with(
        Options::default()
            .module("presence.sweep-interval", "3600000")
            .config("appendonly", "yes"),
    );
    let mut c = server.conn();
    c.int(&["PRESENCE.JOIN", "r", "a", "sa"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb"]);
    c.int(&["PRESENCE.JOIN", "r", "gone", "sg"]);
    c.int(&["PRESENCE.LEAVE", "r", "gone", "sg"]);
    c.int(&["PRESENCE.JOIN", "r", "stale", "ss"]);
    c.int(&["EXPIRE", "room:presence:r:stale", "1000"]);
    c.call(&["BGREWRITEAOF"]);
    wait_for(Duration::from_secs(20), "the AOF rewrite", || {
        (c.info_field("persistence", "aof_rewrite_in_progress") == "0"
            && c.info_field("persistence", "aof_rewrite_scheduled") == "0")
            .then_some(())
    });
    c.int(&["PRESENCE.JOIN", "q", "c", "sc"]);
    c.int(&["PRESENCE.JOIN", "r", "b", "sb2"]);
    c.int(&["PRESENCE.BEAT", "r", "a", "sa"]);
    let before = c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]);
    assert_eq!(before, ["a", "sa", "b", "sb2"]);
    let ttl_before = c.int(&["PTTL", "room:presence:r:a"]);
    let server = server.restart();
    let mut c = server.conn();
    assert_eq!(c.strings(&["PRESENCE.LIST", "r", "WITHSOCKETS"]), before);
    assert_eq!(c.strings(&["PRESENCE.LIST", "q"]), ["c"]);
    let ttl_after = c.int(&["PTTL", "room:presence:r:a"]);
    assert!(ttl_after <= ttl_before && ttl_before - ttl_after < 30_000);
    assert_eq!(c.int(&["PRESENCE.SWEEP"]), 1);
    assert_eq!(c.int(&["EXISTS", "room:presence:r:stale"]), 0);
}
