//! What every task of one shard shares: the config, the router (and through it
//! the shard's own channels), and the process-wide shutdown signal.
//!
//! One per shard, created when the shard's executor starts, shared by `Rc`.

use std::rc::Rc;
use std::sync::Arc;

use crate::config::Config;
use crate::route::Router;
use crate::shutdown::Shutdown;

pub struct ShardContext {
    pub config: Arc<Config>,
    pub router: Router,
    pub shutdown: Arc<Shutdown>,
}

impl ShardContext {
    pub fn new(config: Arc<Config>, router: Router, shutdown: Arc<Shutdown>) -> Rc<ShardContext> {
        Rc::new(ShardContext {
            config,
            router,
            shutdown,
        })
    }
}
