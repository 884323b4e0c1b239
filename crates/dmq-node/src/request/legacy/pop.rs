//! Pop (2): one record from an unsubscribed channel. A missing channel is not
//! created and answers 500, as does a subscribed one.

use dmq_proto::legacy::{encode_status, Status};

use crate::legacy::batch::Batch;
use crate::metrics::probes::RequestKind;

pub fn handle(batch: &mut Batch<'_>, channel: &[u8]) {
    let Some((name, owner)) = batch.begin_channel(RequestKind::Pop, channel) else {
        return;
    };
    let router = batch.router();
    if batch.inline(owner) && !router.local().borrow().waits_for_disk(name) {
        batch.reply(|out| {
            let mut shard = router.local().borrow_mut();
            let at = out.len();
            encode_status(out, Status::Ok);
            if shard.pop_encoded(name, out).is_err() {
                out.truncate(at);
                encode_status(out, Status::Error);
            }
        });
        return;
    }
    // Another shard's channel, or a record of this one that is on disk: the
    // reply waits for it to be read back, and no later request of this
    // connection for this shard overtakes it.
    let slot = batch.ops(owner).pop(name.to_owned(), false);
    batch.reply_popped(owner, slot);
    if router.is_local(owner) {
        batch.defer_local();
    }
}
