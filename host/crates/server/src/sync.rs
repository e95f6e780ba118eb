//! Keeping this host in step with the others that share its store. What
//! each host holds in memory — the loaded plugins, the trigger index, the
//! admin token's hash — changes when any host deploys, rolls back or
//! deletes a plugin, changes API triggers or rotates the token; the host
//! that made the change announces it ([`junction_store::Store::tell_other_hosts`])
//! and the others apply it here as they hear it. Every [`RESYNC_EVERY`]
//! (and after the listener reconnects) everything is compared with the
//! store, so a missed announcement — a host that died between its commit
//! and its notify — costs a delay, not a divergence.

use std::sync::Arc;
use std::time::Duration;

use junction_app::Registry;
use junction_events::Events;
use junction_store::{Change, Store, StoreError};

use super::auth::AdminAuth;

/// How often a host compares what it holds with the store, whatever it heard.
pub const RESYNC_EVERY: Duration = Duration::from_secs(10);

/// The running follower of the other hosts' changes.
pub(crate) struct Follower {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// What the follower keeps in step.
struct Followed {
    store: Arc<Store>,
    registry: Arc<Registry>,
    events: Arc<Events>,
    auth: AdminAuth,
}

/// Starts following the other hosts; `None` when the store has one host.
pub(crate) async fn follow(
    store: Arc<Store>,
    registry: Arc<Registry>,
    events: Arc<Events>,
    auth: AdminAuth,
) -> Result<Option<Follower>, StoreError> {
    let Some(cluster) = store.backend().cluster() else {
        return Ok(None);
    };
    let mut changes = cluster.listen().await?;
    let followed = Followed {
        store,
        registry,
        events,
        auth,
    };
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(RESYNC_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the host just loaded everything.
        every.tick().await;
        loop {
            let change = tokio::select! {
                _ = &mut stopped => break,
                heard = changes.recv() => match heard {
                    Some(change) => change,
                    None => break,
                },
                _ = every.tick() => Change::Resync,
            };
            followed.apply(&change).await;
        }
    });
    Ok(Some(Follower { stop, task }))
}

impl Follower {
    /// Stops following, after the change being applied (if any).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl Followed {
    async fn apply(&self, change: &Change) {
        match change {
            Change::Plugin(name) => {
                match self.registry.refresh(name).await {
                    Ok(_) => {}
                    Err(err) => {
                        tracing::error!(plugin = %name, error = %err, "cannot load a plugin another host changed; retrying at the next resync")
                    }
                }
                self.reload_triggers().await;
            }
            Change::Triggers => self.reload_triggers().await,
            Change::AdminToken => self.reload_token().await,
            Change::Resync => {
                match self.registry.refresh_all().await {
                    Ok(0) => {}
                    Ok(changed) => {
                        tracing::info!(changed, "plugins brought in line with the store")
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "cannot compare the plugins with the store")
                    }
                }
                self.reload_triggers().await;
                self.reload_token().await;
            }
        }
    }

    async fn reload_triggers(&self) {
        if let Err(err) = self.events.reload_triggers().await {
            tracing::error!(error = %err, "cannot reload the triggers another host changed");
        }
    }

    async fn reload_token(&self) {
        match self.auth.reload(&self.store).await {
            Ok(true) => tracing::info!("admin token rotated on another host"),
            Ok(false) => {}
            Err(err) => {
                tracing::error!(error = %err, "cannot read the admin token another host rotated")
            }
        }
    }
}
