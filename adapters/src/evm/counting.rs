//! JSON-RPC calls counted by method, as they leave for the endpoint (each retry counts): a layer
//! on the adapter's RPC client, so no call site can forget it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::{TransportError, TransportFut};

/// Calls per JSON-RPC method.
#[derive(Debug, Default)]
pub struct MethodCounts(Mutex<BTreeMap<String, u64>>);

impl MethodCounts {
    fn add(&self, method: &str) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(method.to_owned()).or_default() += 1;
        }
    }

    /// The calls so far, by method.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        self.0
            .lock()
            .map(|counts| counts.iter().map(|(m, n)| (m.clone(), *n)).collect())
            .unwrap_or_default()
    }
}

/// Counts every request into `counts`.
#[derive(Clone, Debug)]
pub(super) struct CountLayer(pub(super) Arc<MethodCounts>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counting<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counting {
            inner,
            counts: self.0.clone(),
        }
    }
}

/// The service [`CountLayer`] wraps a transport in.
#[derive(Clone, Debug)]
pub(super) struct Counting<S> {
    inner: S,
    counts: Arc<MethodCounts>,
}

impl<S> tower::Service<RequestPacket> for Counting<S>
where
    S: tower::Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        for method in request.method_names() {
            self.counts.add(method);
        }
        self.inner.call(request)
    }
}
