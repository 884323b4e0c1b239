//! Push (1): one record to one channel: 200 once it is in memory or written
//! to the disk overflow, 500 if the overflow cannot take it.

use dmq_proto::legacy::Status;

use crate::legacy::batch::Batch;
use crate::metrics::probes::RequestKind;
use dmq_storage::Stored;

/// Checks in the original's order: name (409), create the channel, empty value
/// (408), so an empty Push still creates its channel.
pub fn handle(batch: &mut Batch<'_>, channel: &[u8], value: &[u8]) {
    let Some((name, owner)) = batch.begin_channel(RequestKind::Push, channel) else {
        return;
    };
    let router = batch.router();
    if batch.inline(owner) {
        let mut shard = router.local().borrow_mut();
        if value.is_empty() {
            shard.create(name);
            drop(shard);
            batch.status(Status::EmptyValue);
            return;
        }
        let result = shard.push(name, value);
        drop(shard);
        match result {
            Ok(Stored::Memory) => batch.status(Status::Ok),
            // On disk: acknowledged once written.
            Ok(Stored::Disk(ticket)) => {
                let slot = batch.ops(owner).await_durable(ticket);
                batch.reply_pushed(owner, slot);
            }
            // The overflow could not take it (logged and counted by the shard).
            Err(_) => batch.status(Status::Error),
        }
    } else if value.is_empty() {
        batch.ops(owner).create(name.to_owned());
        batch.reply_after_ops(Status::EmptyValue);
    } else {
        let slot = batch.ops(owner).push(vec![name.to_owned()], value.to_vec());
        batch.reply_pushed(owner, slot);
    }
}
