//! The pure core: ids, key names, the liveness rule, the room index, the node leases,
//! requests, errors and event payloads. Nothing here touches Redis, so all of it is tested without a server.

#![forbid(unsafe_code)]

pub mod changes;
pub mod cluster;
pub mod data;
pub mod db;
pub mod error;
pub mod events;
pub mod ids;
pub mod index;
pub mod json;
pub mod keys;
pub mod leases;
pub mod liveness;
pub mod request;
pub mod small_str;
pub mod state;
#[cfg(test)]
mod test_rng;
