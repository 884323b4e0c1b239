//! Pop (2): one record from an unsubscribed channel. A missing channel is not
//! created and answers 500, as does a subscribed one.

use dmq_proto::legacy::{encode_status, Status};

use crate::legacy::batch::{Batch, ReplyKind};
use crate::metrics::probes::RequestKind;
use crate::request::channel_name;
use crate::route::Op;

pub fn handle(batch: &mut Batch<'_>, channel: &[u8]) {
    batch.begin(RequestKind::Pop);
    let Some(name) = channel_name(channel) else {
        batch.status(Status::BadChannelName);
        return;
    };
    let router = batch.router();
    let owner = router.owner(channel);
    if batch.inline(owner) && router.local().borrow_mut().pop_would_wait(name) {
        // The record is on disk: the reply waits for it to be read back, and
        // no later request of this connection for this shard overtakes it.
        let op = Op::Pop {
            channel: name.to_owned(),
            create: false,
        };
        batch.remote(owner, op, ReplyKind::Pop);
        batch.defer_local();
    } else if batch.inline(owner) {
        batch.reply(|out| {
            let mut shard = router.local().borrow_mut();
            let at = out.len();
            encode_status(out, Status::Ok);
            if shard.pop_encoded(name, out).is_err() {
                out.truncate(at);
                encode_status(out, Status::Error);
            }
        });
    } else {
        let op = Op::Pop {
            channel: name.to_owned(),
            create: false,
        };
        batch.remote(owner, op, ReplyKind::Pop);
    }
}
