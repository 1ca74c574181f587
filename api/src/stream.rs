//! An intent's event stream: every event of its saga from the first (or after `Last-Event-ID`) as a
//! Server-Sent Event, read from the log and woken by the log's notices, until the outcome is
//! decided.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event;
use baton_engine::log::StoredEvent;
use baton_engine::{Notice, SagaEvent, SagaId};
use tokio::sync::broadcast::error::RecvError;

use crate::App;
use crate::dto::intent::StreamedEvent;
use crate::error::{ApiError, Code};

/// One open event stream of an API key, counted while it lives.
pub(crate) struct StreamSlot {
    streams: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    key: String,
}

impl StreamSlot {
    /// A slot for `caller`'s new stream, unless it holds `app`'s most already (429).
    pub(crate) fn take(app: &App, caller: &str) -> Result<Self, ApiError> {
        let mut open = app.streams.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(caller.to_owned()).or_default();
        if *count >= app.settings.streams_per_key {
            let mut e = ApiError::new(
                Code::RateLimited,
                format!(
                    "API key {caller:?} has {count} event streams open, the most it may; close one \
                     (or follow the intent with GET /v1/intents/{{id}}) and try again"
                ),
            );
            e.retry_after = Some(1);
            return Err(e);
        }
        *count += 1;
        Ok(Self {
            streams: app.streams.clone(),
            key: caller.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Where a stream of one saga's events stands.
pub(crate) struct Follow {
    app: Arc<App>,
    saga: SagaId,
    notices: tokio::sync::broadcast::Receiver<Notice>,
    after: u64,
    pending: VecDeque<StoredEvent>,
    done: bool,
    /// Released when the stream ends or its client goes away.
    _slot: StreamSlot,
}

impl Follow {
    /// The events of `saga` after `after`, woken by `notices` (subscribed before the log is first
    /// read, so nothing written in between is missed).
    pub(crate) fn new(
        app: Arc<App>,
        saga: SagaId,
        notices: tokio::sync::broadcast::Receiver<Notice>,
        after: u64,
        slot: StreamSlot,
    ) -> Self {
        Self {
            app,
            saga,
            notices,
            after,
            pending: VecDeque::new(),
            done: false,
            _slot: slot,
        }
    }

    /// The next SSE event, or `None` once the outcome was sent (or the log cannot be read).
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                self.after = e.seq;
                if matches!(e.event, SagaEvent::Decided { .. }) {
                    self.done = true;
                }
                let kind = e.event.kind();
                let data = StreamedEvent::from(e);
                return Some(
                    Event::default()
                        .id(data.seq.to_string())
                        .event(kind)
                        .json_data(&data)
                        .unwrap_or_else(|_| Event::default().comment("unencodable event")),
                );
            }
            if self.done {
                return None;
            }
            let events = self.app.engine.log().events(self.saga).await.ok()?;
            self.pending
                .extend(events.into_iter().filter(|e| e.seq > self.after));
            if !self.pending.is_empty() {
                continue;
            }
            // Wait for this saga's next event (or look again after a while, or after lagging).
            let wait = async {
                loop {
                    match self.notices.recv().await {
                        Ok(n) if n.saga == self.saga => return true,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return true,
                        Err(RecvError::Closed) => return false,
                    }
                }
            };
            if let Ok(false) = tokio::time::timeout(Duration::from_secs(5), wait).await {
                return None;
            }
        }
    }
}
