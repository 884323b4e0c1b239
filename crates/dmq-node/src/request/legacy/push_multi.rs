//! PushMulti (9): one record to every listed channel (a duplicate name pushes
//! twice). Every name is checked before anything is pushed.

use dmq_proto::legacy::{ChannelList, Status};

use crate::legacy::batch::Batch;
use crate::metrics::probes::RequestKind;
use crate::request::channel_name;
use crate::route::push_to_owners;

/// 409 if any name is bad, 408 for an empty value (nothing is created), otherwise
/// the record goes to each channel on its owner shard and the reply waits for all
/// of them (and for disk writes): 200, or 500 if the disk overflow of some
/// channel could not take it.
pub fn handle(batch: &mut Batch<'_>, channels: ChannelList<'_>, value: &[u8]) {
    batch.begin(RequestKind::PushMulti);
    if channels.iter().any(|c| channel_name(c).is_none()) {
        batch.status(Status::BadChannelName);
        return;
    }
    if value.is_empty() {
        batch.status(Status::EmptyValue);
        return;
    }
    let names = channels.iter().filter_map(channel_name);
    let inline = batch.inline(batch.router().me());
    let (local_refused, ops) = push_to_owners(batch.router(), names, value, inline);
    let parts = ops
        .into_iter()
        .map(|(shard, op)| (shard, batch.push_op(shard, op)))
        .collect();
    batch.all_pushed(parts, local_refused);
}
