//! What the tasks of a shard share: the config, the router (and through it the
//! shard's own channels), and the process-wide [`NodeShared`].
//!
//! One `ShardContext` per shard, created when the shard's executor starts and
//! shared by `Rc`; one `NodeShared` per process, shared by `Arc`.

use std::cell::Ref;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::metrics::probes::Probes;
use crate::route::Router;
use crate::shutdown::Shutdown;

/// Open connections of one listener over all shards: touched on accept and
/// close only.
#[derive(Debug, Default)]
pub struct ConnectionCount(AtomicUsize);

impl ConnectionCount {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts a new connection unless `limit` are open already.
    pub fn try_open(&self, limit: usize) -> bool {
        if self.0.fetch_add(1, Ordering::SeqCst) >= limit {
            self.0.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Counts a connection that ended.
    pub fn close(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// State of the whole process, touched off the hot path only (accept, close,
/// authentication, shutdown).
#[derive(Debug)]
pub struct NodeShared {
    pub shutdown: Shutdown,
    pub legacy_connections: Arc<ConnectionCount>,
    pub neo_connections: Arc<ConnectionCount>,
    pub credentials: CredentialStore,
    pub nr_shards: usize,
}

pub struct ShardContext {
    pub config: Arc<Config>,
    pub router: Router,
    pub node: Arc<NodeShared>,
}

impl ShardContext {
    pub fn new(config: Arc<Config>, router: Router, node: Arc<NodeShared>) -> Rc<ShardContext> {
        Rc::new(ShardContext {
            config,
            router,
            node,
        })
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.node.shutdown
    }

    /// This shard's probes. Do not hold across an await.
    pub fn probes(&self) -> Ref<'_, Probes> {
        Ref::map(self.router.local().borrow(), |shard| &shard.probes)
    }
}
