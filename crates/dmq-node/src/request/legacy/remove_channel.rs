//! RemoveChannel (12): 200 whether or not the channel existed; every Consume of
//! the channel ends with its end marker. When the channel had records on
//! disk, the 200 waits until their drop is written, so that no crash after
//! the answer brings them back.

use dmq_proto::legacy::Status;

use crate::legacy::batch::Batch;
use crate::metrics::probes::RequestKind;

pub fn handle(batch: &mut Batch<'_>, channel: &[u8]) {
    let Some((name, owner)) = batch.begin_channel(RequestKind::RemoveChannel, channel) else {
        return;
    };
    let router = batch.router();
    if batch.inline(owner) {
        let durable = router.local().borrow_mut().remove(name);
        match durable {
            // Records on disk were dropped: answered once that is written.
            Some(ticket) => {
                batch.ops(owner).await_durable(ticket);
                batch.reply_after_ops(Status::Ok);
            }
            None => batch.status(Status::Ok),
        }
    } else {
        batch.ops(owner).remove(name.to_owned());
        batch.reply_after_ops(Status::Ok);
    }
}
