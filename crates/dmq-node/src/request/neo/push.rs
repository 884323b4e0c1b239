//! Push v3: one value to 1..255 channels, created if missing; Pushed once every
//! owner shard has applied it.
//!
//! Differs from the original on purpose (spec 10, Q3): channel names are
//! validated as in the legacy protocol and an empty value is refused; both are
//! answered Error and the connection stays up.

use std::rc::Rc;

use dmq_proto::neo::{PushRequest, PushStatus, RequestId};

use std::time::Instant;

use crate::metrics::probes::RequestKind;
use crate::neo::batch::{push_outcome, NeoBatch};
use crate::neo::shared::{Active, ConnShared};
use crate::request::channel_name;
use crate::route::push_to_owners;

pub fn handle(
    shared: &Rc<ConnShared>,
    batch: &mut NeoBatch,
    id: RequestId,
    request: &PushRequest<'_>,
    start: Instant,
) {
    let value = request.value();
    let channels = request.channels();
    let reply = |batch: &mut NeoBatch, status: PushStatus| {
        shared.outbox.push(|out| status.encode(out, id));
        batch.done_local(shared, RequestKind::Push, push_outcome(status));
    };
    if value.is_empty() {
        tracing::debug!(client = %shared.client, id, "neo Push refused: empty value");
        reply(batch, PushStatus::Error);
        return;
    }
    if let Some(bad) = channels.iter().find(|c| channel_name(c).is_none()) {
        shared.log_invalid_channel(id, "Push", bad);
        reply(batch, PushStatus::Error);
        return;
    }
    let names = channels.iter().filter_map(channel_name);
    let parts = push_to_owners(&shared.ctx.router, names, value, true, batch.ops());
    if parts.parts.is_empty() {
        reply(
            batch,
            if parts.local_refused {
                PushStatus::Error
            } else {
                PushStatus::Pushed
            },
        );
    } else {
        shared.active.insert(id, Active::Waiting);
        batch.await_push(start, id, parts);
    }
}
