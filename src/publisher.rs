//! Publishes the events of presence changes on `__presence@<db>__:<event>`, from masters only.

use crate::api;
use crate::state;
use crate::store;
use presence_core::events::Event;
use redis_module::Context;

/// Publishes events on `__presence@<db>__:<event>`; a replica or a loading server stays silent.
pub fn publish(ctx: &Context, events: Vec<Event>) {
    if events.is_empty() || !store::is_active_master(ctx) {
        return;
    }
    let published = events.len() as u64;
    for event in events {
        let channel = store::string(ctx, event.channel().as_bytes());
        let message = store::string(ctx, event.payload.as_bytes());
        api::publish(ctx, &channel, &message);
    }
    let _ = state::with(|s| s.stats.events += published);
}
