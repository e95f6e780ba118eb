//! Fires schedule triggers on time. Each schedule's last fire time is kept
//! in redb and committed with the event it fires, so after downtime a
//! schedule that missed runs fires once (not once per missed run), with the
//! latest missed time as its schedule time and the number skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone};
use serde_json::json;

use super::index::Registered;
use super::trigger::TriggerKind;
use super::{Events, Incoming, Target};

/// Most occurrences counted when catching up (a per-second schedule after a
/// long outage would otherwise be counted one by one for ever).
const MAX_COUNTED: usize = 100_000;
/// The longest the scheduler sleeps before looking again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The scheduler loop; ends when `stop` fires.
pub async fn run(events: Arc<Events>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut follower = events.clock().follow();
    let mut marks: HashMap<String, u64> = match events.store().schedule_marks().await {
        Ok(marks) => marks,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the schedules' last fire times; schedules start afresh");
            HashMap::new()
        }
    };
    loop {
        let now = events.clock().now_ms();
        let mut next_wake: Option<u64> = None;
        for trigger in events.index().schedules() {
            if let Some(next) = tick(&events, &trigger, &mut marks, now).await {
                next_wake = Some(next_wake.map_or(next, |w: u64| w.min(next)));
            }
        }
        let sleep = next_wake
            .map(|at| Duration::from_millis(at.saturating_sub(now).max(1)))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(sleep) => {}
            _ = follower.moved() => {}
            _ = events.triggers_changed().notified() => {}
        }
    }
}

/// Fires `trigger` if it is due; returns when it is next due.
async fn tick(
    events: &Events,
    trigger: &Registered,
    marks: &mut HashMap<String, u64>,
    now: u64,
) -> Option<u64> {
    let TriggerKind::Schedule {
        schedule,
        timezone,
        expression,
    } = &trigger.trigger.kind
    else {
        return None;
    };
    let key = trigger.schedule_key()?;
    let Some(&last) = marks.get(&key) else {
        // A new schedule starts counting from now: no run for the past.
        let stored = events.store().set_schedule_mark(&key, now).await;
        if stored.is_err() {
            tracing::warn!(schedule = %key, "cannot store the schedule's start; it starts again from now after a restart");
        }
        marks.insert(key, now);
        return next_after(schedule, timezone, now);
    };
    let first_due = next_after(schedule, timezone, last)?;
    if first_due > now {
        return Some(first_due);
    }
    let (latest, missed) = latest_due(schedule, timezone, last, now);
    let at = timezone.timestamp_millis_opt(latest as i64).single();
    let payload = json!({
        "schedule": expression,
        "timezone": timezone.name(),
        "scheduled_for": at.map(|t| t.to_rfc3339()),
        "scheduled_for_ms": latest,
        "missed": missed,
        "trigger": trigger.id,
    });
    let incoming = Incoming {
        kind: "schedule".to_owned(),
        payload: payload.to_string(),
        source: "schedule",
        idempotency_key: None,
        occurred_at_ms: latest,
        targets: Some(vec![Target {
            plugin: trigger.plugin.clone(),
            retries: trigger.trigger.retries,
        }]),
        schedule_mark: Some((key.clone(), now)),
        end_user: None,
    };
    match events.ingest(incoming).await {
        Ok(accepted) => {
            tracing::info!(schedule = %key, event = %accepted.id, missed, "schedule fired");
            marks.insert(key, now);
        }
        Err(err) => {
            // Not marked: it is tried again on the next tick.
            tracing::error!(schedule = %key, error = %err, "cannot fire the schedule");
            return Some(now + 1000);
        }
    }
    next_after(schedule, timezone, now)
}

fn at_ms<Z: TimeZone>(tz: &Z, ms: u64) -> Option<DateTime<Z>> {
    tz.timestamp_millis_opt(ms as i64).single()
}

/// The first occurrence strictly after `after_ms`.
pub fn next_after(schedule: &cron::Schedule, tz: &chrono_tz::Tz, after_ms: u64) -> Option<u64> {
    let from = at_ms(tz, after_ms)?;
    schedule
        .after(&from)
        .next()
        .map(|t| t.timestamp_millis().max(0) as u64)
}

/// The latest occurrence in `(last, now]` and how many earlier ones it
/// stands for (the runs missed).
pub fn latest_due(
    schedule: &cron::Schedule,
    tz: &chrono_tz::Tz,
    last: u64,
    now: u64,
) -> (u64, usize) {
    let mut latest = None;
    let mut count = 0usize;
    if let Some(from) = at_ms(tz, last) {
        for occurrence in schedule.after(&from).take(MAX_COUNTED) {
            let ms = occurrence.timestamp_millis().max(0) as u64;
            if ms > now {
                break;
            }
            latest = Some(ms);
            count += 1;
        }
    }
    (latest.unwrap_or(now), count.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn one_catch_up_for_many_missed_runs() {
        let schedule = cron::Schedule::from_str("0 */5 * * * *").unwrap();
        let tz = chrono_tz::UTC;
        // 2026-01-01T00:00:00Z, then an hour later.
        let start = 1_767_225_600_000u64;
        assert_eq!(next_after(&schedule, &tz, start), Some(start + 300_000));
        let (latest, missed) = latest_due(&schedule, &tz, start, start + 3_600_000 + 1);
        assert_eq!(latest, start + 3_600_000);
        assert_eq!(missed, 11);
    }

    #[test]
    fn time_zones_move_the_hour() {
        let schedule = cron::Schedule::from_str("0 0 9 * * *").unwrap();
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let start = 1_767_225_600_000u64; // midnight UTC = 01:00 in Berlin (winter)
        let next = next_after(&schedule, &berlin, start).unwrap();
        assert_eq!(next, start + 8 * 3_600_000, "09:00 Berlin is 08:00 UTC");
    }
}
