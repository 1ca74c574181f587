//! How the engine reaches an attester: the [`Attest`] trait, for an attester in this process
//! ([`crate::Attester`] itself) or one behind its HTTP API ([`HttpAttester`]).

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::StatusCode;

use crate::service::Attester;
use crate::wire::{Answer, Attestation, CancelRequest, FillRequest, Pending, Problem, Refusal};

/// The attester could not be asked, or did not answer (down, slow, failing): ask again later.
#[derive(Debug, thiserror::Error)]
#[error("attester {name}: {detail}")]
pub struct Unreachable {
    /// Which attester.
    pub name: String,
    /// What happened.
    pub detail: String,
}

/// An attester as the engine asks it.
pub trait Attest: Send + Sync {
    /// A name for logs and statuses (its URL).
    fn name(&self) -> String;
    /// Asks for a fill attestation.
    fn fill<'a>(&'a self, req: &'a FillRequest) -> BoxFuture<'a, Result<Answer, Unreachable>>;
    /// Asks for a cancel attestation.
    fn cancel<'a>(&'a self, req: &'a CancelRequest) -> BoxFuture<'a, Result<Answer, Unreachable>>;
}

impl Attest for Attester {
    fn name(&self) -> String {
        format!("in-process {}", self.address())
    }

    fn fill<'a>(&'a self, req: &'a FillRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        Box::pin(async move {
            Attester::fill(self, req).await.map_err(|e| Unreachable {
                name: Attest::name(self),
                detail: e.to_string(),
            })
        })
    }

    fn cancel<'a>(&'a self, req: &'a CancelRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        Box::pin(async move {
            Attester::cancel(self, req).await.map_err(|e| Unreachable {
                name: Attest::name(self),
                detail: e.to_string(),
            })
        })
    }
}

/// An attester behind its HTTP API (`baton attester serve`).
pub struct HttpAttester {
    base: reqwest::Url,
    client: reqwest::Client,
}

impl HttpAttester {
    /// The attester at `base` (e.g. `http://127.0.0.1:7001/`), each request given `timeout`.
    pub fn new(base: reqwest::Url, timeout: Duration) -> Result<Self, Unreachable> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Unreachable {
                name: base.to_string(),
                detail: e.to_string(),
            })?;
        Ok(Self { base, client })
    }

    async fn post<T: serde::Serialize + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Answer, Unreachable> {
        let fail = |detail: String| Unreachable {
            name: self.base.to_string(),
            detail,
        };
        let url = self.base.join(path).map_err(|e| fail(e.to_string()))?;
        let response = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        let problem = || -> Result<Problem, Unreachable> {
            serde_json::from_slice(&bytes)
                .map_err(|e| fail(format!("a {status} answer that is not a problem: {e}")))
        };
        let code = |p: &Problem| serde_json::Value::String(p.code.clone());
        if status == StatusCode::OK {
            let a: Attestation = serde_json::from_slice(&bytes)
                .map_err(|e| fail(format!("a 200 answer that is not an attestation: {e}")))?;
            Ok(Answer::Signed(a))
        } else if status == StatusCode::ACCEPTED {
            let p = problem()?;
            let reason: Pending = serde_json::from_value(code(&p))
                .map_err(|_| fail(format!("an unknown pending code {}", p.code)))?;
            Ok(Answer::Pending {
                reason,
                detail: p.message,
            })
        } else if status.is_client_error() {
            let p = problem()?;
            let reason: Refusal = serde_json::from_value(code(&p))
                .map_err(|_| fail(format!("{status}: {} ({})", p.code, p.message)))?;
            Ok(Answer::Refused {
                reason,
                detail: p.message,
            })
        } else {
            Err(fail(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )))
        }
    }
}

impl Attest for HttpAttester {
    fn name(&self) -> String {
        self.base.to_string()
    }

    fn fill<'a>(&'a self, req: &'a FillRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        Box::pin(self.post("v1/fills", req))
    }

    fn cancel<'a>(&'a self, req: &'a CancelRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        Box::pin(self.post("v1/cancels", req))
    }
}
