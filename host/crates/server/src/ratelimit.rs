//! Rate limits per client address for the routes anyone can reach without
//! a token: the OAuth callback and webhooks. A keyed GCRA limiter
//! (`governor`): each address gets a burst of a minute's allowance, refilled
//! evenly; past it the answer is 429 with `Retry-After`, before any work is
//! done. Addresses not seen for a while are forgotten, so a flood of
//! addresses costs bounded memory. On a store several hosts share, the
//! same GCRA is counted in the store, so a client spreading its requests
//! over the hosts gets one allowance, not one per host.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;
use junction_store::{RateAnswer, Store, now_ms};

/// Checks between two sweeps of addresses that went quiet.
const SWEEP_EVERY: u64 = 4096;

/// Where the allowances are counted.
#[derive(Clone)]
enum Counting {
    /// In this process: the only host.
    Here {
        limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
        checks: Arc<AtomicU64>,
    },
    /// In the store every host shares.
    Shared(Arc<Store>),
}

/// The limiter shared by the public routes.
#[derive(Clone)]
pub(crate) struct PublicLimiter {
    counting: Counting,
    per_minute: u32,
}

impl PublicLimiter {
    /// `per_minute` requests per client address (at least 1), counted in
    /// `store` when other hosts share it.
    pub(crate) fn new(per_minute: u32, store: &Arc<Store>) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let counting = if store.backend().cluster().is_some() {
            Counting::Shared(store.clone())
        } else {
            Counting::Here {
                limiter: Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                    per_minute,
                ))),
                checks: Arc::new(AtomicU64::new(0)),
            }
        };
        PublicLimiter {
            counting,
            per_minute: per_minute.get(),
        }
    }

    /// `Ok`, or how many seconds to wait.
    async fn check(&self, addr: IpAddr) -> Result<(), u64> {
        match &self.counting {
            Counting::Here { limiter, checks } => {
                if checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                    limiter.retain_recent();
                }
                limiter.check_key(&addr).map_err(|not_until| {
                    not_until
                        .wait_time_from(DefaultClock::default().now())
                        .as_secs()
                        .max(1)
                })
            }
            Counting::Shared(store) => {
                let Some(cluster) = store.backend().cluster() else {
                    return Ok(());
                };
                match cluster
                    .take_rate_token(&format!("public:{addr}"), now_ms(), self.per_minute)
                    .await
                {
                    Ok(RateAnswer::Allowed) => Ok(()),
                    Ok(RateAnswer::RetryAfterMs(ms)) => Err(ms.div_ceil(1000).max(1)),
                    // The request needs the store anyway and fails there
                    // with the reason; the limiter does not hide it.
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot count a public request against its rate limit");
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Middleware: answers 429 to a client past its allowance.
pub(crate) async fn limit_public(
    State(limiter): State<PublicLimiter>,
    request: Request,
    next: Next,
) -> Response {
    // Requests not accepted by `listen::serve` (tests driving the router
    // directly) carry no address and are not limited.
    let Some(addr) = super::listen::client_address(request.extensions()) else {
        return next.run(request).await;
    };
    match limiter.check(addr.ip()).await {
        Ok(()) => next.run(request).await,
        Err(wait_secs) => {
            tracing::warn!(client = %addr.ip(), path = request.uri().path(), "public route rate limit reached");
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!(
                    "this address made more than {} requests a minute to the public routes; try again in {wait_secs} s",
                    limiter.per_minute
                ),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&wait_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}
