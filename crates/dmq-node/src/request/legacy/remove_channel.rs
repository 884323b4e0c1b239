//! RemoveChannel (12): 200 whether or not the channel existed; every Consume of
//! the channel ends with its end marker.

use dmq_proto::legacy::Status;

use crate::legacy::batch::{Batch, ReplyKind};
use crate::metrics::probes::RequestKind;
use crate::request::channel_name;
use crate::route::Op;

pub fn handle(batch: &mut Batch<'_>, channel: &[u8]) {
    batch.begin(RequestKind::RemoveChannel);
    let Some(name) = channel_name(channel) else {
        batch.status(Status::BadChannelName);
        return;
    };
    let router = batch.router();
    let owner = router.owner(channel);
    if router.is_local(owner) {
        router.local().borrow_mut().remove(name);
        batch.status(Status::Ok);
    } else {
        let op = Op::Remove {
            channel: name.to_owned(),
        };
        batch.remote(owner, op, ReplyKind::Fixed(Status::Ok));
    }
}
