//! The one door every OpenStack request goes through: authentication on
//! first use (and again when a 401 says the token went bad), a bound on
//! concurrent calls, a timeout per attempt, retries with backoff
//! (honouring `Retry-After`) and a circuit breaker.

use super::breaker::{Breaker, Verdict};
use super::errors::{ApiError, ApiErrorKind, retry_after};
use super::session::{self, Credentials, Ready};
use backon::{ExponentialBuilder, Retryable};
use osauth::ServiceRequestBuilder;
use osauth::services::ServiceType;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

/// How hard to try. The defaults suit a real cloud; tests shorten them.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// Retries after the first attempt, for a busy or failing cloud.
    pub retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is cut to it: the driver tries
    /// again at its next step anyway.
    pub max_retry_after: Duration,
    /// Calls failing in a row (after their retries) that open the circuit.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 8,
            retries: 3,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Whether a request may be sent twice.
///
/// Either kind is sent once more after a 401 with a new token: every
/// OpenStack API checks the token (keystonemiddleware) before it acts, so a
/// request refused with 401 was not acted on, a create included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// GET, DELETE, PUT: repeating does no harm.
    Idempotent,
    /// A create: repeat only when the cloud said it did not act (429, 503),
    /// never after a timeout, which may hide a success. The driver finds
    /// a server created behind a lost answer by its metadata.
    Once,
}

/// A successful answer.
pub struct Reply {
    body: Vec<u8>,
    what: String,
    /// The `Location` header, where an older API puts a new resource's URL.
    location: Option<String>,
}

impl Reply {
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::new(
                &self.what,
                ApiErrorKind::BadAnswer,
                format!("unexpected answer: {e}"),
            )
        })
    }
}

pub struct Api {
    credentials: Credentials,
    region: Option<String>,
    interface: Option<String>,
    /// The authenticated session every call shares; replaced when a 401
    /// shows its token was revoked (or its credential rotated).
    ready: Mutex<Option<Arc<Ready>>>,
    permits: Semaphore,
    breaker: Breaker,
    tuning: Tuning,
}

impl Api {
    pub fn new(
        credentials: Credentials,
        region: Option<String>,
        interface: Option<String>,
        tuning: Tuning,
    ) -> Self {
        Self {
            credentials,
            region,
            interface,
            ready: Mutex::new(None),
            permits: Semaphore::new(tuning.max_concurrent_requests.max(1)),
            breaker: Breaker::new(tuning.breaker_threshold, tuning.breaker_cooldown),
            tuning,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The authenticated session; the first caller authenticates, the
    /// others wait for it. A failure is not kept: the next call tries again.
    pub async fn ready(&self) -> Result<Arc<Ready>, ApiError> {
        let mut slot = self.ready.lock().await;
        if let Some(ready) = &*slot {
            return Ok(ready.clone());
        }
        let ready = Arc::new(self.connect().await?);
        *slot = Some(ready.clone());
        Ok(ready)
    }

    /// A call made with `stale` was answered 401: authenticate again (which
    /// reads the credentials again, so a rotated application credential is
    /// picked up), unless a concurrent call has already done so. However
    /// many calls meet the 401 together, Keystone is asked once.
    async fn renew(&self, stale: &Arc<Ready>) -> Result<Arc<Ready>, ApiError> {
        let mut slot = self.ready.lock().await;
        if let Some(current) = &*slot
            && !Arc::ptr_eq(current, stale)
        {
            return Ok(current.clone());
        }
        // Should Keystone refuse now, the next call starts afresh.
        *slot = None;
        let ready = Arc::new(self.connect().await?);
        tracing::info!("OpenStack answered 401: authenticated again");
        *slot = Some(ready.clone());
        Ok(ready)
    }

    async fn connect(&self) -> Result<Ready, ApiError> {
        let connect = session::connect(
            &self.credentials,
            self.region.as_deref(),
            self.interface.as_deref(),
        );
        tokio::time::timeout(self.tuning.request_timeout, connect)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    "authenticate with Keystone",
                    ApiErrorKind::Timeout,
                    format!("no answer in {:?}", self.tuning.request_timeout),
                ))
            })
    }

    /// Send the request `build` makes (again for each attempt) and return
    /// the answer, or the error after retries.
    pub async fn call<S, F>(&self, what: &str, repeat: Repeat, build: F) -> Result<Reply, ApiError>
    where
        S: ServiceType + Send,
        F: Fn(&Ready) -> ServiceRequestBuilder<S>,
    {
        let pass = match self.breaker.admit() {
            Ok(pass) => pass,
            Err(left) => {
                return Err(ApiError::new(
                    what,
                    ApiErrorKind::CircuitOpen,
                    format!(
                        "the cloud failed several calls in a row; not calling it for another {} s",
                        left.as_secs()
                    ),
                ));
            }
        };
        let t = &self.tuning;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(t.min_backoff)
            .with_max_delay(t.max_backoff)
            .with_max_times(t.retries)
            .with_jitter();
        let result = (|| self.attempt(what, &build))
            .retry(backoff)
            .when(|e: &ApiError| match repeat {
                Repeat::Idempotent => e.is_retryable(),
                Repeat::Once => e.was_not_acted_on(),
            })
            .adjust(|e: &ApiError, delay| {
                delay.map(|d| e.retry_after.map_or(d, |r| r.min(t.max_retry_after)))
            })
            .notify(|e: &ApiError, delay| {
                tracing::warn!(error = %e, retry_in = ?delay, "OpenStack call failed; retrying");
            })
            .await;
        pass.settle(match &result {
            Ok(_) => Verdict::Up,
            Err(e) if e.is_outage() => Verdict::Down,
            // A refusal (404, 409, 401...) is an answer: the cloud is up.
            Err(e) if e.kind == ApiErrorKind::Status => Verdict::Up,
            Err(_) => Verdict::Unknown,
        });
        result
    }

    /// One attempt; after a 401, one more with a new token.
    async fn attempt<S, F>(&self, what: &str, build: &F) -> Result<Reply, ApiError>
    where
        S: ServiceType + Send,
        F: Fn(&Ready) -> ServiceRequestBuilder<S>,
    {
        let ready = self.ready().await?;
        match self.exchange(what, build, &ready).await {
            Err(e) if e.status == Some(StatusCode::UNAUTHORIZED) => {
                let ready = self.renew(&ready).await?;
                self.exchange(what, build, &ready).await
            }
            other => other,
        }
    }

    async fn exchange<S, F>(&self, what: &str, build: &F, ready: &Ready) -> Result<Reply, ApiError>
    where
        S: ServiceType + Send,
        F: Fn(&Ready) -> ServiceRequestBuilder<S>,
    {
        let _permit = self.permits.acquire().await.expect("never closed");
        let timeout = self.tuning.request_timeout;
        let exchange = async {
            let response = build(ready).send_unchecked().await.map_err(|e| {
                let kind = match e.kind() {
                    // osauth's endpoint discovery met a 401: the token went
                    // bad, as for a 401 answer to the request itself.
                    osauth::ErrorKind::AuthenticationFailed => {
                        return ApiError::from_status(
                            what,
                            StatusCode::UNAUTHORIZED,
                            e.to_string().as_bytes(),
                            None,
                        );
                    }
                    osauth::ErrorKind::ProtocolError => ApiErrorKind::Transport,
                    osauth::ErrorKind::InternalServerError => ApiErrorKind::Transport,
                    osauth::ErrorKind::EndpointNotFound => ApiErrorKind::BadAnswer,
                    _ => ApiErrorKind::Credentials,
                };
                ApiError::new(what, kind, e.to_string())
            })?;
            let status = response.status();
            let wait = retry_after(response.headers());
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .bytes()
                .await
                .map_err(|e| ApiError::new(what, ApiErrorKind::Transport, e.to_string()))?;
            if status.is_success() {
                Ok(Reply {
                    body: body.to_vec(),
                    what: what.to_owned(),
                    location,
                })
            } else {
                Err(ApiError::from_status(what, status, &body, wait))
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    what,
                    ApiErrorKind::Timeout,
                    format!("no answer in {} s", timeout.as_secs_f32()),
                ))
            })
    }
}
