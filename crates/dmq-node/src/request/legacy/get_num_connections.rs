//! GetNumConnections (8): recognised but never implemented by the original, which
//! always answers 406 NotSupported; so do we (clients skip it).

use dmq_proto::legacy::Status;

use crate::legacy::batch::Batch;
use crate::metrics::probes::RequestKind;

pub fn handle(batch: &mut Batch<'_>) {
    batch.begin(RequestKind::GetNumConnections);
    batch.status(Status::NotSupported);
}
