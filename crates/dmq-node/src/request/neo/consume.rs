//! Consume v4: streams a subscriber's records in batches, one unacknowledged
//! batch at a time.
//!
//! The task polls the owner shard for records (up to [`POLL_BYTES`] per poll)
//! and gathers them into a batch. The batch goes out as one Records message when
//! it holds at least [`BATCH_SEND_THRESHOLD`] bytes, or when `write_flush_ms`
//! has passed since its first record. Then the task waits for Continue before it
//! sends more; a poll already in flight may still land meanwhile, so at most one
//! extra poll's worth of records waits in the node. Stop (at any time) stops the
//! consumer on the owner shard, sends the records already popped, then Stopped.
//! A RemoveChannel ends the request with ChannelRemoved, after the records popped
//! before it have been sent and acknowledged.
//!
//! Differs from the original on purpose (spec 10, Q3): channel and subscriber
//! names are validated (the legacy rules; the subscriber may be empty), and an
//! invalid one answers Error at start.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use dmq_proto::neo::{
    encode_records, ConsumeClientMessage, ConsumeNodeMessage, ConsumeRequest, ConsumeStatus,
    RequestId, BATCH_SEND_THRESHOLD,
};
use futures_lite::FutureExt;

use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::neo::inbox::Inbox;
use crate::neo::shared::{Active, ConnShared};
use crate::request::channel_name;
use crate::route::{ShardGone, ShardId};
use crate::shard::{ConsumerId, PollResult};

/// Most bytes of records popped per poll of the owner shard.
pub const POLL_BYTES: usize = 128 * 1024;
/// Validates the request and starts its task (or answers Error).
pub fn start(shared: &Rc<ConnShared>, id: RequestId, request: &ConsumeRequest<'_>) {
    let channel = channel_name(request.channel);
    let subscriber_ok = dmq_storage::is_valid_subscriber_name(request.subscriber);
    let (Some(channel), true) = (channel, subscriber_ok) else {
        tracing::debug!(
            client = %shared.client,
            id,
            channel = %String::from_utf8_lossy(request.channel),
            subscriber = %String::from_utf8_lossy(request.subscriber),
            "neo Consume refused: invalid channel or subscriber name"
        );
        shared
            .outbox
            .push(|out| ConsumeStatus::Error.encode(out, id));
        shared
            .ctx
            .probes()
            .request_done(Protocol::Neo, RequestKind::Consume, Outcome::Error, None);
        return;
    };
    let inbox = Rc::new(Inbox::default());
    shared.active.insert(
        id,
        Active::Consume {
            inbox: inbox.clone(),
        },
    );
    let task = Consume {
        shared: shared.clone(),
        id,
        channel: channel.to_owned(),
        // Valid subscriber names are ASCII.
        subscriber: String::from_utf8_lossy(request.subscriber).into_owned(),
        inbox,
    };
    glommio::spawn_local(task.run()).detach();
}

type PollFuture = Pin<Box<dyn Future<Output = Result<PollResult, ShardGone>>>>;

enum Wake {
    Polled(Result<PollResult, ShardGone>),
    Client(Option<ConsumeClientMessage>),
    Flush,
    Shutdown,
}

struct Consume {
    shared: Rc<ConnShared>,
    id: RequestId,
    channel: String,
    subscriber: String,
    inbox: Rc<Inbox>,
}

impl Consume {
    async fn run(self) {
        self.shared
            .ctx
            .probes()
            .request_started(Protocol::Neo, RequestKind::Consume);
        let result = self.serve().await;
        self.shared
            .ctx
            .probes()
            .request_ended(Protocol::Neo, RequestKind::Consume);
        if let Err(e) = result {
            tracing::warn!(client = %self.shared.client, id = self.id, channel = %self.channel, "neo Consume: {e}");
        }
        self.shared.active.remove(self.id);
    }

    fn send(&self, message: ConsumeNodeMessage<'_>) {
        self.shared.outbox.push(|out| message.encode(out, self.id));
    }

    fn send_batch(&self, batch: &mut Vec<u8>) {
        self.shared
            .outbox
            .push(|out| encode_records(out, self.id, batch));
        batch.clear();
    }

    async fn serve(&self) -> Result<(), ShardGone> {
        let ctx = self.shared.ctx.clone();
        let router = &ctx.router;
        let owner = router.owner(self.channel.as_bytes());
        let consumer = router
            .consume_start(owner, &self.channel, &self.subscriber)
            .await?;
        self.shared
            .outbox
            .push(|out| ConsumeStatus::Started.encode(out, self.id));
        ctx.probes()
            .request_done(Protocol::Neo, RequestKind::Consume, Outcome::Started, None);
        let flush_after = Duration::from_millis(u64::from(ctx.config.performance.write_flush_ms));

        let mut poll: Option<PollFuture> = None;
        let mut batch: Vec<u8> = Vec::new();
        let mut flush_at: Option<Instant> = None;
        let mut awaiting_ack = false;
        let mut removed = false;
        loop {
            if poll.is_none()
                && !removed
                && batch.len() < BATCH_SEND_THRESHOLD
                && (!awaiting_ack || batch.is_empty())
            {
                let ctx = ctx.clone();
                poll = Some(Box::pin(async move {
                    ctx.router.poll(owner, consumer, POLL_BYTES).await
                }));
            }
            let event = {
                let polled = async {
                    match poll.as_mut() {
                        Some(p) => Wake::Polled(p.await),
                        None => futures_lite::future::pending().await,
                    }
                };
                let client = async { Wake::Client(self.inbox.next().await) };
                let flush = async {
                    match (awaiting_ack, flush_at) {
                        (false, Some(at)) => {
                            glommio::timer::sleep(at.saturating_duration_since(Instant::now()))
                                .await;
                            Wake::Flush
                        }
                        _ => futures_lite::future::pending().await,
                    }
                };
                let shutdown = async {
                    ctx.shutdown().wait().await;
                    Wake::Shutdown
                };
                polled.or(client).or(flush).or(shutdown).await
            };
            let mut flush_due = false;
            match event {
                Wake::Polled(result) => {
                    poll = None;
                    match result? {
                        PollResult::Records { buf, .. } => {
                            batch.extend_from_slice(&buf);
                            flush_at.get_or_insert_with(|| Instant::now() + flush_after);
                        }
                        // The owner already forgot this consumer.
                        PollResult::Finished => removed = true,
                    }
                }
                Wake::Client(Some(ConsumeClientMessage::Continue)) => {
                    if !awaiting_ack {
                        // A Continue for a batch that was never sent.
                        self.stop(owner, consumer, &mut poll, &mut batch, removed)
                            .await;
                        self.shared.abort(format!(
                            "request {}: Consume: Continue without a batch to acknowledge",
                            self.id
                        ));
                        return Ok(());
                    }
                    awaiting_ack = false;
                }
                Wake::Client(Some(ConsumeClientMessage::Stop)) | Wake::Shutdown => {
                    self.stop(owner, consumer, &mut poll, &mut batch, removed)
                        .await;
                    if !batch.is_empty() {
                        self.send_batch(&mut batch);
                    }
                    self.send(ConsumeNodeMessage::Stopped);
                    return Ok(());
                }
                Wake::Client(None) => {
                    // The connection closed: nobody to tell.
                    self.stop(owner, consumer, &mut poll, &mut batch, removed)
                        .await;
                    return Ok(());
                }
                Wake::Flush => flush_due = true,
            }
            if !awaiting_ack
                && !batch.is_empty()
                && (batch.len() >= BATCH_SEND_THRESHOLD || flush_due || removed)
            {
                self.send_batch(&mut batch);
                flush_at = None;
                awaiting_ack = true;
            }
            if removed && !awaiting_ack && batch.is_empty() {
                self.send(ConsumeNodeMessage::ChannelRemoved);
                return Ok(());
            }
        }
    }

    /// Unregisters the consumer (unless the owner already did), and adds the
    /// records of a poll that was in flight to the batch.
    async fn stop(
        &self,
        owner: ShardId,
        consumer: ConsumerId,
        poll: &mut Option<PollFuture>,
        batch: &mut Vec<u8>,
        removed: bool,
    ) {
        if removed {
            return;
        }
        let router = &self.shared.ctx.router;
        if router.consume_stop(owner, consumer).await.is_err() {
            return;
        }
        // Stopping dropped a waiting poll unanswered; one answered before the
        // stop carries records that are ours to deliver.
        if let Some(p) = poll.take() {
            if let Ok(PollResult::Records { buf, .. }) = p.await {
                batch.extend_from_slice(&buf);
            }
        }
    }
}
