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

/// A running Consume's state between wake-ups.
struct Flow {
    owner: ShardId,
    consumer: ConsumerId,
    /// The poll of the owner shard in flight, if any.
    poll: Option<PollFuture>,
    /// Records gathered for the next Records message.
    batch: Vec<u8>,
    /// When the batch goes out even if small (`write_flush_ms` after its
    /// first record).
    flush_at: Option<Instant>,
    /// A batch was sent and its Continue has not come.
    awaiting_ack: bool,
    /// The channel was removed: the owner forgot the consumer.
    removed: bool,
}

impl Flow {
    /// Poll again: none in flight, the channel still there, room in the
    /// batch, and at most one batch waiting for its Continue.
    fn wants_poll(&self) -> bool {
        self.poll.is_none()
            && !self.removed
            && self.batch.len() < BATCH_SEND_THRESHOLD
            && (!self.awaiting_ack || self.batch.is_empty())
    }
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
        let owner = ctx.router.owner(self.channel.as_bytes());
        let consumer = ctx
            .router
            .consume_start(owner, &self.channel, &self.subscriber)
            .await?;
        self.shared
            .outbox
            .push(|out| ConsumeStatus::Started.encode(out, self.id));
        ctx.probes()
            .request_done(Protocol::Neo, RequestKind::Consume, Outcome::Started, None);
        let flush_after = Duration::from_millis(u64::from(ctx.config.performance.write_flush_ms));
        let mut flow = Flow {
            owner,
            consumer,
            poll: None,
            batch: Vec::new(),
            flush_at: None,
            awaiting_ack: false,
            removed: false,
        };
        loop {
            if flow.wants_poll() {
                let ctx = ctx.clone();
                flow.poll = Some(Box::pin(async move {
                    ctx.router.poll(owner, consumer, POLL_BYTES).await
                }));
            }
            let event = self.next_event(&mut flow).await;
            let mut flush_due = false;
            match event {
                Wake::Polled(result) => {
                    flow.poll = None;
                    match result? {
                        PollResult::Records { buf, .. } => {
                            flow.batch.extend_from_slice(&buf);
                            flow.flush_at
                                .get_or_insert_with(|| Instant::now() + flush_after);
                        }
                        // The owner already forgot this consumer.
                        PollResult::Finished => flow.removed = true,
                    }
                }
                Wake::Client(Some(ConsumeClientMessage::Continue)) if flow.awaiting_ack => {
                    flow.awaiting_ack = false;
                }
                Wake::Flush => flush_due = true,
                ending => {
                    self.end(&mut flow, ending).await;
                    return Ok(());
                }
            }
            if !flow.awaiting_ack
                && !flow.batch.is_empty()
                && (flow.batch.len() >= BATCH_SEND_THRESHOLD || flush_due || flow.removed)
            {
                self.send_batch(&mut flow.batch);
                flow.flush_at = None;
                flow.awaiting_ack = true;
            }
            if flow.removed && !flow.awaiting_ack && flow.batch.is_empty() {
                self.send(ConsumeNodeMessage::ChannelRemoved);
                return Ok(());
            }
        }
    }

    /// Waits for what comes first: a poll's records, a client message, the
    /// flush time of a batch, or the shutdown.
    async fn next_event(&self, flow: &mut Flow) -> Wake {
        let polled = async {
            match flow.poll.as_mut() {
                Some(p) => Wake::Polled(p.await),
                None => futures_lite::future::pending().await,
            }
        };
        let client = async { Wake::Client(self.inbox.next().await) };
        let flush = async {
            match (flow.awaiting_ack, flow.flush_at) {
                (false, Some(at)) => {
                    glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await;
                    Wake::Flush
                }
                _ => futures_lite::future::pending().await,
            }
        };
        let shutdown = async {
            self.shared.ctx.shutdown().wait().await;
            Wake::Shutdown
        };
        polled.or(client).or(flush).or(shutdown).await
    }

    /// Ends the request on a client message or the shutdown: a Stop or the
    /// shutdown sends what was popped, then Stopped; a Continue without a
    /// batch to acknowledge is a protocol error; a closed connection has
    /// nobody to tell.
    async fn end(&self, flow: &mut Flow, event: Wake) {
        self.stop(flow).await;
        match event {
            Wake::Client(Some(ConsumeClientMessage::Stop)) | Wake::Shutdown => {
                if !flow.batch.is_empty() {
                    self.send_batch(&mut flow.batch);
                }
                self.send(ConsumeNodeMessage::Stopped);
            }
            Wake::Client(Some(ConsumeClientMessage::Continue)) => {
                self.shared.abort(format!(
                    "request {}: Consume: Continue without a batch to acknowledge",
                    self.id
                ));
            }
            _ => {}
        }
    }

    /// Unregisters the consumer (unless the owner already did), and adds the
    /// records of a poll that was in flight to the batch.
    async fn stop(&self, flow: &mut Flow) {
        if flow.removed {
            return;
        }
        let router = &self.shared.ctx.router;
        if router
            .consume_stop(flow.owner, flow.consumer)
            .await
            .is_err()
        {
            return;
        }
        // Stopping dropped a waiting poll unanswered; one answered before the
        // stop carries records that are ours to deliver.
        if let Some(p) = flow.poll.take() {
            if let Ok(PollResult::Records { buf, .. }) = p.await {
                flow.batch.extend_from_slice(&buf);
            }
        }
    }
}
