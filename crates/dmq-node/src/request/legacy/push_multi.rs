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
    let router = batch.router();
    let inline = batch.inline(router.me());
    let parts = push_to_owners(router, names, value, inline, batch.all_ops());
    batch.all_pushed(parts);
}
