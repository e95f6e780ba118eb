//! The per-execution call budgets: how many `invoke-url` calls in all
//! (`limits.http-calls`) and how many at once (`limits.http-concurrency`).
//! A single call past either fails fast with `limit-exceeded`; the calls
//! of an `invoke-many` batch wait for a place in flight instead; a plugin that goes on
//! calling past [`CALLS_PAST_BUDGET`] refusals is ended, so it cannot spin
//! on the error.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::bindings::junction::plugin::http::Error;

/// Calls refused for the spent budget before the execution is ended: a
/// plugin that does not look at its errors must not spin on them.
pub(crate) const CALLS_PAST_BUDGET: u32 = 10;

/// What one execution may still call.
pub(super) struct CallBudget {
    limit: u32,
    concurrency: usize,
    started: u32,
    /// Calls refused because the budget was spent.
    over_budget: u32,
    in_flight: Arc<Semaphore>,
}

impl CallBudget {
    /// `limit` calls in all, `concurrency` at once.
    pub(super) fn new(limit: u32, concurrency: usize) -> Self {
        CallBudget {
            limit,
            concurrency,
            started: 0,
            over_budget: 0,
            in_flight: Arc::new(Semaphore::new(concurrency)),
        }
    }

    /// Counts one call against the budgets; the permit is its place in
    /// flight. A single call never waits for a place: it fails fast.
    pub(super) fn admit(&mut self) -> Result<OwnedSemaphorePermit, Error> {
        if let Err(error) = self.take() {
            self.over_budget += 1;
            return Err(error);
        }
        self.in_flight.clone().try_acquire_owned().map_err(|_| {
            Error::LimitExceeded(format!(
                "more than {} invoke-url calls in flight at once",
                self.concurrency
            ))
        })
    }

    /// Counts one call of a batch against the total; the batch then waits
    /// for each call's place in flight ([`CallBudget::in_flight`]).
    pub(super) fn take(&mut self) -> Result<(), Error> {
        if self.started >= self.limit {
            return Err(Error::LimitExceeded(format!(
                "this execution already made {} invoke-url calls, its limit; raise limits.http-calls in the manifest",
                self.limit
            )));
        }
        self.started += 1;
        Ok(())
    }

    /// Counts a batch that had calls refused for the spent budget, as one
    /// refused call: spinning is calling again and again, not asking much
    /// at once.
    pub(super) fn batch_refused(&mut self) {
        self.over_budget += 1;
    }

    /// The in-flight places, which a batch's calls wait on.
    pub(super) fn in_flight(&self) -> Arc<Semaphore> {
        self.in_flight.clone()
    }

    /// The most calls one execution may make.
    pub(super) fn limit(&self) -> u32 {
        self.limit
    }

    /// Why the execution ends, once the plugin has gone on calling past
    /// the grace of refused calls.
    pub(super) fn spinning(&self) -> Option<String> {
        (self.over_budget > CALLS_PAST_BUDGET).then(|| {
            format!(
                "the plugin went on calling invoke-url after its limit of {} calls ({} calls refused); raise limits.http-calls in the manifest or stop on the error",
                self.limit, self.over_budget
            )
        })
    }
}
