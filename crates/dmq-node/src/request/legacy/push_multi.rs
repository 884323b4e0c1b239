//! PushMulti (9): one record to every listed channel (a duplicate name pushes
//! twice). Every name is checked before anything is pushed.

use dmq_proto::legacy::{ChannelList, Status};

use crate::legacy::batch::Batch;
use crate::metrics::probes::RequestKind;
use crate::request::channel_name;
use crate::route::Op;
use crate::shard::PushError;

/// 409 if any name is bad, 408 for an empty value (nothing is created), otherwise
/// the record goes to each channel on its owner shard and the reply waits for all
/// of them: 200, or 407 if some channel's ring could not take it.
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
    let router = batch.router();
    let mut parts = Vec::new();
    let mut local_full = false;
    for raw in channels.iter() {
        let Some(name) = channel_name(raw) else {
            continue;
        };
        let owner = router.owner(raw);
        if router.is_local(owner) {
            let result = router.local().borrow_mut().push(name, value);
            local_full |= result == Err(PushError::Full);
        } else {
            let op = Op::Push {
                channel: name.to_owned(),
                value: value.to_vec(),
            };
            parts.push((owner, batch.push_op(owner, op)));
        }
    }
    batch.all_pushed(parts, local_full);
}
