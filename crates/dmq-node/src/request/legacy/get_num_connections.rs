//! GetNumConnections (8): recognised but never implemented by the original, which
//! always answers 406 NotSupported; so do we (clients skip it).

use dmq_proto::legacy::Status;

use crate::legacy::batch::Batch;

pub fn handle(batch: &mut Batch<'_>) {
    batch.count_request(false);
    batch.status(Status::NotSupported);
}
