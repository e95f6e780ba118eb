//! Plugin triggers as the manifest declares them, parsed and checked at
//! deploy so a bad one refuses the upload with the reason:
//! `{ event = "lead.*", filter = { status = "sent", "list.id" = { exists = true } } }`,
//! `{ schedule = "0 */6 * * *", timezone = "Europe/Berlin" }` (5 or 6 cron
//! fields, parsed by the `cron` crate), `{ webhook = "mailchimp" }`,
//! `{ connection = "needs-reauth" }`; each may set `retries` (default 5).

use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

/// Most retries a trigger may ask for.
pub const MAX_RETRIES: u32 = 20;
/// Retries when a trigger sets none.
pub const DEFAULT_RETRIES: u32 = 5;
/// Connection states a trigger can follow.
const CONNECTION_STATES: [&str; 4] = ["connected", "disconnected", "needs-reauth", "error"];

/// When a plugin runs.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    /// Events whose kind matches `pattern` (`*` matches any run of characters).
    Event {
        /// The kind, or a glob such as `lead.*`.
        pattern: String,
        /// Conditions on the payload.
        filter: Vec<Condition>,
    },
    /// A cron schedule in a time zone.
    Schedule {
        /// The expression as written.
        expression: String,
        /// The parsed schedule (seconds first).
        schedule: Box<cron::Schedule>,
        /// The time zone it runs in.
        timezone: chrono_tz::Tz,
    },
    /// `POST /hooks/{plugin}/{name}`.
    Webhook {
        /// The hook's name.
        name: String,
        /// Conditions on the payload.
        filter: Vec<Condition>,
    },
    /// A connection changing state.
    Connection {
        /// `connected`, `disconnected`, `needs-reauth` or `error`.
        state: String,
    },
}

/// One condition on an event payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field at the dotted path equals this value.
    Equals(String, Value),
    /// The field at the dotted path exists (or, with `false`, does not).
    Exists(String, bool),
}

/// A checked trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// What fires it.
    pub kind: TriggerKind,
    /// Retries after a failed delivery.
    pub retries: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTrigger {
    event: Option<String>,
    schedule: Option<String>,
    webhook: Option<String>,
    connection: Option<String>,
    filter: Option<serde_json::Map<String, Value>>,
    timezone: Option<String>,
    retries: Option<u32>,
}

impl Trigger {
    /// Parses one manifest trigger; the error says what is wrong.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let raw: RawTrigger = serde_json::from_value(value.clone()).map_err(|e| {
            format!("{e} (a trigger has one of event, schedule, webhook or connection)")
        })?;
        let set = [&raw.event, &raw.schedule, &raw.webhook, &raw.connection]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set != 1 {
            return Err(
                "a trigger needs exactly one of `event`, `schedule`, `webhook` or `connection`"
                    .into(),
            );
        }
        let retries = raw.retries.unwrap_or(DEFAULT_RETRIES);
        if retries > MAX_RETRIES {
            return Err(format!(
                "retries {retries} is above the limit of {MAX_RETRIES}"
            ));
        }
        if raw.timezone.is_some() && raw.schedule.is_none() {
            return Err("`timezone` is for schedule triggers".into());
        }
        if raw.filter.is_some() && raw.event.is_none() && raw.webhook.is_none() {
            return Err("`filter` is for event and webhook triggers".into());
        }
        let filter = parse_filter(raw.filter.as_ref())?;
        let kind = if let Some(pattern) = raw.event {
            check_pattern(&pattern)?;
            TriggerKind::Event { pattern, filter }
        } else if let Some(expression) = raw.schedule {
            let fields = expression.split_whitespace().count();
            // The cron crate wants seconds first; plain cron has 5 fields.
            let full = match fields {
                5 => format!("0 {expression}"),
                6 => expression.clone(),
                n => {
                    return Err(format!(
                        "schedule `{expression}` has {n} fields; use 5 (minute hour day month weekday) or 6 (with seconds first)"
                    ));
                }
            };
            let schedule = cron::Schedule::from_str(&full)
                .map_err(|e| format!("schedule `{expression}` is not a cron expression: {e}"))?;
            let zone = raw.timezone.as_deref().unwrap_or("UTC");
            let timezone = chrono_tz::Tz::from_str(zone).map_err(|_| {
                format!("timezone `{zone}` is not an IANA time zone such as Europe/Berlin")
            })?;
            TriggerKind::Schedule {
                expression,
                schedule: Box::new(schedule),
                timezone,
            }
        } else if let Some(name) = raw.webhook {
            let ok = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(format!(
                    "webhook name `{name}` is invalid: use a-z, 0-9 and -, at most 63 characters"
                ));
            }
            TriggerKind::Webhook { name, filter }
        } else {
            let state = raw.connection.unwrap_or_default();
            if !CONNECTION_STATES.contains(&state.as_str()) {
                return Err(format!(
                    "connection state `{state}` is not one of {}",
                    CONNECTION_STATES.join(", ")
                ));
            }
            TriggerKind::Connection { state }
        };
        Ok(Trigger { kind, retries })
    }

    /// Whether an event of `kind` with `payload` fires this trigger.
    pub fn matches_event(&self, kind: &str, payload: &Value) -> bool {
        match &self.kind {
            TriggerKind::Event { pattern, filter } => {
                glob_match(pattern, kind) && filter.iter().all(|c| c.holds(payload))
            }
            _ => false,
        }
    }
}

impl Condition {
    /// Whether `payload` satisfies the condition.
    pub fn holds(&self, payload: &Value) -> bool {
        match self {
            Condition::Equals(path, expected) => lookup(payload, path) == Some(expected),
            Condition::Exists(path, wanted) => lookup(payload, path).is_some() == *wanted,
        }
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, part| current.get(part))
}

fn parse_filter(filter: Option<&serde_json::Map<String, Value>>) -> Result<Vec<Condition>, String> {
    let Some(filter) = filter else {
        return Ok(Vec::new());
    };
    filter
        .iter()
        .map(|(path, value)| {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(format!("filter path `{path}` is not a dotted field path"));
            }
            match value {
                Value::Object(map) if map.contains_key("exists") => {
                    match (map.len(), map.get("exists")) {
                        (1, Some(Value::Bool(wanted))) => Ok(Condition::Exists(path.clone(), *wanted)),
                        _ => Err(format!(
                            "filter `{path}`: use {{ exists = true }} or {{ exists = false }}"
                        )),
                    }
                }
                Value::Object(_) | Value::Array(_) => Err(format!(
                    "filter `{path}`: compare with a string, number, boolean or null, or use {{ exists = true }}"
                )),
                scalar => Ok(Condition::Equals(path.clone(), scalar.clone())),
            }
        })
        .collect()
}

/// Whether `text` is an event kind: 1 to 128 of a-z, 0-9, `.`, `_`, `-`,
/// and, in a glob, `*`.
pub fn is_kind(text: &str, glob: bool) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-')
                || (glob && b == b'*')
        })
}

fn check_pattern(pattern: &str) -> Result<(), String> {
    if is_kind(pattern, true) {
        Ok(())
    } else {
        Err(format!(
            "event `{pattern}` is invalid: use a-z, 0-9, `.`, `_`, `-` and `*` (e.g. `lead.*`)"
        ))
    }
}

/// `*` matches any run of characters; everything else matches itself. A
/// crate would be more than this needs: kinds are short and globs simple.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn good_triggers_parse() {
        let t = Trigger::parse(
            &json!({"event": "lead.*", "filter": {"status": "sent", "list.id": {"exists": true}}}),
        )
        .unwrap();
        assert!(t.matches_event(
            "lead.created",
            &json!({"status": "sent", "list": {"id": 1}})
        ));
        assert!(!t.matches_event(
            "lead.created",
            &json!({"status": "draft", "list": {"id": 1}})
        ));
        assert!(!t.matches_event("lead.created", &json!({"status": "sent"})));
        assert!(!t.matches_event(
            "campaign.sent",
            &json!({"status": "sent", "list": {"id": 1}})
        ));
        assert_eq!(t.retries, DEFAULT_RETRIES);
        let s = Trigger::parse(
            &json!({"schedule": "0 */6 * * *", "timezone": "Europe/Berlin", "retries": 2}),
        )
        .unwrap();
        assert!(matches!(s.kind, TriggerKind::Schedule { .. }));
        assert!(Trigger::parse(&json!({"schedule": "30 0 */6 * * *"})).is_ok());
        assert!(Trigger::parse(&json!({"webhook": "mailchimp"})).is_ok());
        assert!(Trigger::parse(&json!({"connection": "needs-reauth"})).is_ok());
    }

    #[test]
    fn bad_triggers_say_why() {
        let cases = [
            (json!({"schedule": "every day"}), "2 fields"),
            (json!({"schedule": "61 * * * *"}), "not a cron expression"),
            (
                json!({"schedule": "0 * * * *", "timezone": "Mars/Olympus"}),
                "Mars/Olympus",
            ),
            (
                json!({"event": "Lead Created"}),
                "`Lead Created` is invalid",
            ),
            (json!({"event": "a", "webhook": "b"}), "exactly one"),
            (json!({"evnt": "a"}), "evnt"),
            (json!({"webhook": "Mail_Chimp"}), "webhook name"),
            (json!({"connection": "gone"}), "not one of"),
            (json!({"event": "a", "retries": 99}), "retries 99"),
            (
                json!({"event": "a", "timezone": "UTC"}),
                "for schedule triggers",
            ),
            (
                json!({"schedule": "0 * * * *", "filter": {}}),
                "for event and webhook",
            ),
            (json!({"event": "a", "filter": {"x": [1]}}), "filter `x`"),
            (
                json!({"event": "a", "filter": {"x": {"exists": "yes"}}}),
                "exists = true",
            ),
            (
                json!({"event": "a", "filter": {"a..b": 1}}),
                "dotted field path",
            ),
        ];
        for (value, needle) in cases {
            let err = Trigger::parse(&value).unwrap_err();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn globs_match_like_shells() {
        assert!(glob_match("lead.*", "lead.created"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("*.sent", "campaign.sent"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("lead.*", "leads.created"));
    }

    proptest::proptest! {
        /// `glob_match` agrees with the same glob written as a regex.
        #[test]
        fn globs_match_as_their_regex_does(pattern in "[a.*]{0,8}", text in "[a.]{0,12}") {
            let regex = format!(
                "^{}$",
                pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*")
            );
            let expected = regex::Regex::new(&regex).unwrap().is_match(&text);
            proptest::prop_assert_eq!(glob_match(&pattern, &text), expected, "{} on {}", pattern, text);
        }

        /// A filter's `equals` holds exactly for payloads with that value at that path.
        #[test]
        fn equality_filters_hold_exactly(key in "[a-z]{1,6}", wanted in 0i64..5, given in 0i64..5) {
            let trigger = Trigger::parse(&json!({"event": "k", "filter": {key.clone(): wanted}})).unwrap();
            let payload = json!({key: given});
            proptest::prop_assert_eq!(trigger.matches_event("k", &payload), wanted == given);
            proptest::prop_assert!(!trigger.matches_event("other", &payload));
        }
    }
}
