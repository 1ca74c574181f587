//! Webhook delivery: each instance's deliverer claims due messages from the outbox the saga log
//! fills ([`baton_engine::log::Message`]), posts each to its endpoint signed as Standard Webhooks
//! do, and records the attempt. A 2xx answer delivers it; anything else is retried with
//! exponential backoff and jitter until the retry window (a day by default) has passed since it
//! was first due, and then the endpoint is marked failing. A claim outlives the delivery's timeout,
//! so a deliverer that dies mid-delivery leaves its messages to the next one: at least once.
//!
//! What a receiver checks: `webhook-signature` is `v1,` and the base64 of HMAC-SHA256, keyed with
//! the secret's bytes (base64 after `whsec_`), over `{webhook-id}.{webhook-timestamp}.{body}`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_engine::log::{Attempt, Message, Next};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::App;
use crate::dto::webhook::{WebhookData, WebhookPayload};
use crate::error::{ApiError, Code};

/// How webhooks are delivered.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// How long an endpoint has to answer one delivery.
    pub timeout: Duration,
    /// The first retry's delay; each next one doubles, up to [`WebhookSettings::backoff_max`],
    /// each with jitter (between half and all of it).
    pub backoff: Duration,
    /// The longest delay between two attempts.
    pub backoff_max: Duration,
    /// How long a message is retried from when it was first due; then its endpoint is failing.
    pub retry_for: Duration,
    /// Whether endpoints may be on loopback, private or link-local addresses (a devnet's
    /// receivers are; a public deployment's should not be: a dApp would make the server call
    /// into its own network).
    pub allow_private: bool,
    /// Endpoints one API key may register.
    pub per_key: usize,
    /// Deliveries in flight at once, per instance.
    pub in_flight: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(3600),
            retry_for: Duration::from_secs(24 * 3600),
            allow_private: false,
            per_key: 16,
            in_flight: 64,
        }
    }
}

/// How long the delivery log keeps an attempt.
const KEEP_ATTEMPTS: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the deliverer looks at the outbox when nothing wakes it: for retries that come due,
/// and for messages other instances' writers put there.
const POLL: Duration = Duration::from_millis(500);

/// A new endpoint id: `wh_` and 32 random hex digits.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    random(&mut bytes);
    format!("wh_{}", alloy::hex::encode(bytes))
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    random(&mut bytes);
    format!("whsec_{}", BASE64.encode(bytes))
}

fn random(bytes: &mut [u8]) {
    // The operating system's generator; without it no secret can be made safely.
    if let Err(e) = getrandom::fill(bytes) {
        panic!("the operating system's random generator failed: {e}");
    }
}

/// The `webhook-signature` of `body` sent as message `id` at `timestamp` (unix seconds) with
/// `secret` (`whsec_…`): `v1,` and the base64 of its HMAC-SHA256 over `id.timestamp.body`.
pub fn sign(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = BASE64
        .decode(key)
        .unwrap_or_else(|_| key.as_bytes().to_vec());
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Checks that `url` — whose shape (`http://`, a host name or IPv4 address, a port, a path) the
/// request schema has checked already — is one deliveries may go to: unless `allow_private`, its
/// host is neither an IPv4 address off the public internet nor `localhost` (a host name is checked
/// again each time it is resolved, by [`PublicOnly`], so that it cannot be pointed into the
/// server's network later).
pub(crate) fn target_allowed(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let refuse = |why: String| ApiError::new(Code::InvalidRequest, format!("url: {why}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| refuse(format!("not a URL ({e})")))?;
    if allow_private {
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default();
    match host.parse::<IpAddr>() {
        Ok(ip) if !public(&ip) => Err(refuse(format!(
            "{ip} is not a public address; this server delivers only to public ones"
        ))),
        _ if host == "localhost" || host.ends_with(".localhost") => Err(refuse(format!(
            "{host:?} is this machine; this server delivers only to public addresses"
        ))),
        _ => Ok(()),
    }
}

/// Resolves host names to their public addresses only: a webhook endpoint cannot be pointed at
/// the server's own network by its DNS (checked at each connection, not once at registration).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = found.filter(|a| public(&a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is an address on the public internet.
fn public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 100.64.0.0/10, shared address space (carrier-grade NAT).
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(&IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
    }
}

/// Wakes the deliverer (a message became due at once).
pub(crate) fn wake(app: &App) {
    app.webhook_wake.notify_one();
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones: the backoff doubled per
/// failure, capped, then between half and all of it.
fn backoff(settings: &WebhookSettings, attempts: u64) -> Duration {
    let doubled = settings
        .backoff
        .saturating_mul(1u32 << attempts.min(20))
        .min(settings.backoff_max);
    doubled.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Delivers webhooks until the process ends: claims what is due, posts each message in a task of
/// its own (at most [`WebhookSettings::in_flight`] at once), and looks again when the saga log
/// commits, when woken, or every [`POLL`].
pub async fn deliver(app: Arc<App>) {
    let settings = app.settings.webhooks.clone();
    let mut client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !settings.allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = match client.build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; nothing is delivered");
            return;
        }
    };
    let mut notices = app.engine.log().subscribe();
    let mut tasks = JoinSet::new();
    let mut pruned = Instant::now()
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or_else(Instant::now);
    let hold =
        i64::try_from((settings.timeout + Duration::from_secs(5)).as_millis()).unwrap_or(i64::MAX);
    loop {
        while tasks.try_join_next().is_some() {}
        let room = settings.in_flight.saturating_sub(tasks.len());
        let now = baton_engine::now_ms();
        let claimed = if room == 0 {
            Vec::new()
        } else {
            match app
                .engine
                .log()
                .claim_webhooks(now, now.saturating_add(hold), room)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: reading the outbox");
                    Vec::new()
                }
            }
        };
        let busy = !claimed.is_empty();
        for message in claimed {
            tasks.spawn(attempt(app.clone(), client.clone(), message));
        }
        if pruned.elapsed() > Duration::from_secs(3600) {
            pruned = Instant::now();
            let before = now.saturating_sub(i64::try_from(KEEP_ATTEMPTS.as_millis()).unwrap_or(0));
            if let Err(e) = app.engine.log().prune_webhook_attempts(before).await {
                tracing::warn!(error = %e, "webhooks: pruning the delivery log");
            }
        }
        if busy && tasks.len() < settings.in_flight {
            continue;
        }
        tokio::select! {
            _ = notices.recv() => {
                // Let the commit's other events land too before reading the outbox again.
                tokio::time::sleep(Duration::from_millis(20)).await;
                notices = notices.resubscribe();
            }
            _ = app.webhook_wake.notified() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One attempt to deliver `message`, recorded with what follows from it.
async fn attempt(app: Arc<App>, client: reqwest::Client, message: Message) {
    let settings = &app.settings.webhooks;
    let id = message.id();
    let at_ms = baton_engine::now_ms();
    let started = Instant::now();
    let (status, error) = match post(&client, &message, &id).await {
        Ok(status) if (200..300).contains(&status) => (Some(status), None),
        Ok(status) => (
            Some(status),
            Some(format!("the endpoint answered {status}")),
        ),
        Err(e) => (None, Some(e)),
    };
    let retry_for = i64::try_from(settings.retry_for.as_millis()).unwrap_or(i64::MAX);
    let next = if error.is_none() {
        Next::Delivered
    } else if at_ms.saturating_sub(message.first_ms) >= retry_for {
        Next::GiveUp
    } else {
        let delay = i64::try_from(backoff(settings, message.attempts).as_millis()).unwrap_or(0);
        Next::RetryAt(baton_engine::now_ms().saturating_add(delay))
    };
    let outcome = match next {
        Next::Delivered => "delivered",
        Next::RetryAt(_) => "retrying",
        Next::GiveUp => "gave_up",
    };
    metrics::counter!("baton_webhook_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("baton_webhook_delivery_seconds").record(started.elapsed().as_secs_f64());
    if next == Next::GiveUp {
        tracing::warn!(endpoint = %message.endpoint_id, message = %id, "webhooks: the endpoint \
            answered no delivery with 2xx for the whole retry window; it is marked failing");
    }
    let record = Attempt {
        message_id: id,
        topic: message.topic.clone(),
        attempt: message.attempts + 1,
        at_ms,
        status,
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if let Err(e) = app
        .engine
        .log()
        .webhook_attempted(&message, &record, next)
        .await
    {
        // Unrecorded: the claim lapses and the message is delivered again (at least once).
        tracing::warn!(error = %e, "webhooks: recording a delivery attempt");
    }
}

/// Posts `message` as `id`, signed now; the endpoint's status, or why none came.
async fn post(client: &reqwest::Client, message: &Message, id: &str) -> Result<u16, String> {
    let event: serde_json::Value = serde_json::from_str(&message.event)
        .map_err(|e| format!("the stored event does not parse ({e})"))?;
    let body = serde_json::to_vec(&WebhookPayload {
        kind: message.topic.clone(),
        timestamp: rfc3339(message.at_ms),
        data: WebhookData {
            intent_id: message.saga.to_string(),
            seq: message.seq,
            at_ms: message.at_ms,
            event,
        },
    })
    .map_err(|e| format!("the payload does not encode ({e})"))?;
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let signature = sign(&message.secret, id, timestamp, &body);
    let response = client
        .post(&message.url)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "baton-webhooks")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "no answer within the timeout".to_owned()
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                format!("the request failed ({e})")
            }
        })?;
    Ok(response.status().as_u16())
}

/// `at_ms` as RFC 3339 in UTC, to the millisecond.
fn rfc3339(at_ms: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification: its secret, message and signature.
    #[test]
    fn signs_as_the_standard_webhooks_specification_does() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!public(&private.parse().expect("an address")), "{private}");
        }
        for open in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(public(&open.parse().expect("an address")), "{open}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let settings = WebhookSettings::default();
        for attempts in 0..40 {
            let full = settings
                .backoff
                .saturating_mul(1 << attempts.min(20))
                .min(settings.backoff_max);
            let d = backoff(&settings, attempts);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?} of {full:?}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(1_614_265_330_123), "2021-02-25T15:02:10.123Z");
    }
}
