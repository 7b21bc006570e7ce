//! Publishes the events of presence changes, from masters only: on `__presence@<db>__:<event>`
//! (`PUBLISH`) and on each room's `__presence@<db>__:{<room>}` (sharded, `SPUBLISH`), as
//! `presence.events` says.

use crate::config;
use crate::ffi::propagate;
use crate::state;
use crate::store;
use presence_core::events::Event;
use redis_module::Context;

/// Publishes events on the channels `presence.events` chooses; a replica or a loading server
/// stays silent.
pub fn publish(ctx: &Context, events: Vec<Event>) {
    if events.is_empty() || !store::is_active_master(ctx) {
        return;
    }
    let channels = config::channels();
    let mut published = 0;
    for event in events {
        if event.global && (channels.global() || event.room.is_none()) {
            let channel = store::string(ctx, event.channel().as_bytes());
            let message = store::string(ctx, event.payload.as_bytes());
            propagate::publish(ctx, &channel, &message);
            published += 1;
        }
        if let Some(channel) = channels.room().then(|| event.room_channel()).flatten() {
            let channel = store::string(ctx, channel.as_bytes());
            let message = store::string(ctx, event.room_payload().as_bytes());
            propagate::publish_shard(ctx, &channel, &message);
            published += 1;
        }
    }
    state::unless_busy(|s| s.stats.events += published);
}
