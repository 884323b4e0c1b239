//! Legacy request handlers. The short ones add their reply to a [`Batch`](crate::legacy::batch::Batch)
//! (crate::legacy::batch::Batch); the streaming ones take over the connection.

pub mod consume;
pub mod get_num_connections;
pub mod pop;
pub mod produce;
pub mod push;
pub mod push_multi;
pub mod remove_channel;
