//! Pop v1: one record; unlike legacy Pop, a missing channel is created and
//! answers Empty. A subscribed channel answers Subscribed.
//!
//! Differs from the original on purpose (spec 10, Q3): an invalid channel name
//! answers Error instead of creating a channel with that name.

use std::rc::Rc;

use dmq_proto::neo::PopRequest;
use dmq_proto::neo::{PopReply, RequestId};

use std::time::Instant;

use crate::metrics::probes::{Outcome, RequestKind};
use crate::neo::batch::{encode_popped, NeoBatch};
use crate::neo::shared::{Active, ConnShared};
use crate::request::channel_name;

pub fn handle(
    shared: &Rc<ConnShared>,
    batch: &mut NeoBatch,
    id: RequestId,
    request: &PopRequest<'_>,
    start: Instant,
) {
    let Some(name) = channel_name(request.channel) else {
        shared.log_invalid_channel(id, "Pop", request.channel);
        shared.outbox.push(|out| PopReply::Error.encode(out, id));
        batch.done_local(shared, RequestKind::Pop, Outcome::Error);
        return;
    };
    let router = &shared.ctx.router;
    let owner = router.owner(request.channel);
    if router.is_local(owner) && !router.local().borrow().waits_for_disk(name) {
        let outcome = router
            .local()
            .borrow_mut()
            .pop_with(name, true, |popped| encode_popped(shared, id, Some(popped)));
        batch.done_local(shared, RequestKind::Pop, outcome);
    } else {
        // Another shard's channel, or records of this one that are on disk.
        let slot = batch.ops().for_shard(owner).pop(name.to_owned(), true);
        shared.active.insert(id, Active::Waiting);
        batch.await_pop(start, id, owner, slot);
    }
}
