//! The time schedules run on: the system clock, or a manual clock that
//! tests set and advance, so a schedule can be seen firing (and catching
//! up after downtime) without waiting for minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

struct Manual {
    now_ms: AtomicU64,
    changed: watch::Sender<u64>,
}

/// A clock: the system's by default.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(m) => write!(f, "Clock::manual({})", m.now_ms.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that stands at `start_ms` until it is moved.
    pub fn manual(start_ms: u64) -> Self {
        let manual = Manual {
            now_ms: AtomicU64::new(start_ms),
            changed: watch::Sender::new(start_ms),
        };
        Clock {
            manual: Some(Arc::new(manual)),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(m) => m.now_ms.load(Ordering::SeqCst),
            None => junction_store::now_ms(),
        }
    }

    /// Moves a manual clock forward (the system clock moves by itself).
    pub fn advance(&self, by: Duration) {
        if let Some(m) = &self.manual {
            let now =
                m.now_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst) + by.as_millis() as u64;
            m.changed.send_replace(now);
        }
    }

    /// Sets a manual clock.
    pub fn set_ms(&self, now_ms: u64) {
        if let Some(m) = &self.manual {
            m.now_ms.store(now_ms, Ordering::SeqCst);
            m.changed.send_replace(now_ms);
        }
    }

    /// A follower that resolves each time a manual clock is moved (changes
    /// made while the follower was busy are not missed); never for the
    /// system clock.
    pub fn follow(&self) -> ClockFollower {
        ClockFollower {
            receiver: self.manual.as_ref().map(|m| m.changed.subscribe()),
        }
    }
}

/// See [`Clock::follow`].
pub struct ClockFollower {
    receiver: Option<watch::Receiver<u64>>,
}

impl ClockFollower {
    /// Waits until the clock is moved.
    pub async fn moved(&mut self) {
        let moved = match &mut self.receiver {
            Some(receiver) => receiver.changed().await.is_ok(),
            None => false,
        };
        if !moved {
            std::future::pending::<()>().await;
        }
    }
}
