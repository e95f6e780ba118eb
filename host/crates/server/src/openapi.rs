//! The API description as served: what utoipa generates from the handlers,
//! made exact where its derives cannot say it — the patterns of names
//! (link names, services, plugins, event kinds), the range of `limit`, the
//! enums of filter words, that a service needs a `name` or a `catalog` and a
//! trigger exactly one of its four kinds, that JSON payloads may be any JSON
//! value, and the 413 and 415 every body-taking route can answer. The
//! patterns are the validators' rules (`store::validate_*`,
//! `events::check_kind`), written once more in JSON Schema's dialect; the
//! test suite checks the two agree with schemathesis.

use serde_json::{Value, json};

/// A link name: a lower-case letter, then a-z, 0-9 and `_`, at most 50.
pub const LINK_NAME: &str = "^[a-z][a-z0-9_]{0,49}$";
/// A service name: a lower-case letter, then a-z, 0-9, `_` and `-`, at most 63.
pub const SERVICE_NAME: &str = "^[a-z][a-z0-9_-]{0,62}$";
/// A plugin name: a lower-case letter, then a-z, 0-9 and `-`, not ending in `-`, at most 63.
pub const PLUGIN_NAME: &str = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$";
/// An event kind: 1 to 128 of a-z, 0-9, `.`, `_`, `-`.
pub const EVENT_KIND: &str = "^[a-z0-9._-]{1,128}$";
/// An end user id: 1 to 128 characters (the schema's lengths), none a
/// control character or whitespace.
pub const END_USER: &str = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$";

/// An OAuth scope: printable ASCII but space, `"`, `,` and `\\`.
pub const SCOPE: &str = "^[\\x21\\x23-\\x2b\\x2d-\\x5b\\x5d-\\x7e]+$";

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// What an end user id may be, on a schema that is one (or may be null).
fn end_user_schema(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut() {
        object.insert("pattern".into(), json!(END_USER));
        object.insert("minLength".into(), json!(1));
        object.insert("maxLength".into(), json!(128));
    }
}

fn set_pattern(schema: &mut Value, pattern: &str) {
    if let Some(object) = schema.as_object_mut() {
        object.insert("pattern".into(), json!(pattern));
    }
}

/// Makes `doc` (the generated OpenAPI document) say exactly what the API does.
pub(crate) fn tighten(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (_method, operation) in item.iter_mut() {
                tighten_operation(path, operation);
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    set_pattern(
        &mut schemas["CreateConnection"]["properties"]["link_name"],
        LINK_NAME,
    );
    set_pattern(
        &mut schemas["CreateConnection"]["properties"]["service"],
        SERVICE_NAME,
    );
    set_pattern(
        &mut schemas["NewEventRequest"]["properties"]["kind"],
        EVENT_KIND,
    );
    set_pattern(
        &mut schemas["NewTriggerRequest"]["properties"]["plugin"],
        PLUGIN_NAME,
    );
    for schema in [
        "CreateConnection",
        "InvokeRequest",
        "NewEventRequest",
        "NewApiKey",
        "NewConnectLink",
    ] {
        end_user_schema(&mut schemas[schema]["properties"]["end_user"]);
    }
    set_pattern(
        &mut schemas["NewConnectLink"]["properties"]["service"],
        SERVICE_NAME,
    );
    set_pattern(
        &mut schemas["NewConnectLink"]["properties"]["link_name"],
        LINK_NAME,
    );
    let items = &mut schemas["NewConnectLink"]["properties"]["scopes"]["items"];
    if items.is_object() {
        items["pattern"] = json!(SCOPE);
    }
    // An app's name: something visible, no control characters.
    set_pattern(
        &mut schemas["NewConnectLink"]["properties"]["app"],
        "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
    );
    // A service is named, or made from a catalog entry (which names it).
    if let Some(input) = schemas["ServiceInput"].as_object_mut() {
        input.insert(
            "anyOf".into(),
            json!([{"required": ["name", "auth_type"]}, {"required": ["catalog"]}]),
        );
    }
    set_pattern(
        &mut schemas["ServiceInput"]["properties"]["name"],
        SERVICE_NAME,
    );
    set_pattern(
        &mut schemas["ServiceInput"]["properties"]["catalog"],
        SERVICE_NAME,
    );
    // A trigger is exactly one of four kinds.
    schemas["NewTriggerRequest"]["properties"]["trigger"] = json!({
        "type": "object",
        "description": "As in a manifest: {\"event\": \"lead.*\", \"filter\": {...}}, {\"schedule\": \"0 9 * * 1-5\", \"timezone\": \"Europe/Berlin\"}, {\"webhook\": \"stripe\"} or {\"connection\": \"needs-reauth\"}.",
        "oneOf": [
            {"required": ["event"], "properties": {"event": {"type": "string", "pattern": "^[a-z0-9._*-]{1,128}$"}}},
            {"required": ["schedule"], "properties": {"schedule": {"type": "string", "minLength": 9}}},
            {"required": ["webhook"], "properties": {"webhook": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,62}$"}}},
            {"required": ["connection"], "properties": {"connection": {"type": "string", "enum": ["connected", "disconnected", "needs-reauth", "error"]}}}
        ]
    });
    // Each credentials variant takes its own fields only.
    if let Some(variants) = schemas["CredentialsInput"]["oneOf"].as_array_mut() {
        for variant in variants {
            if variant["type"] == "object" {
                variant["additionalProperties"] = json!(false);
            }
        }
    }
    // HTTP statuses.
    let statuses = &mut schemas["OAuthSettings"]["properties"]["refresh_on_status"]["items"];
    if statuses.is_object() {
        statuses["minimum"] = json!(100);
        statuses["maximum"] = json!(599);
    }
    // What the event route accepts as an idempotency key.
    let key = &mut schemas["NewEventRequest"]["properties"]["idempotency_key"];
    if key.is_object() {
        key["minLength"] = json!(1);
        key["maxLength"] = json!(256);
        key["pattern"] = json!("^[^\\u0000-\\u001f\\u007f-\\u009f]*$");
    }
    // Scopes: printable ASCII without spaces, quotes, commas or backslashes.
    for schema in ["CreateConnection", "OAuthSettings"] {
        let items = &mut schemas[schema]["properties"]["scopes"]["items"];
        if items.is_object() {
            items["pattern"] = json!(SCOPE);
        }
    }
    // Payloads are any JSON value, `null` included.
    for (schema, field) in [
        ("EventView", "payload"),
        ("NewEventRequest", "payload"),
        ("InvokeRequest", "payload"),
    ] {
        if schemas[schema]["properties"][field].is_object() {
            let description = schemas[schema]["properties"][field]["description"].clone();
            schemas[schema]["properties"][field] = json!({"description": description});
        }
    }
}

fn tighten_operation(path: &str, operation: &mut Value) {
    let Some(object) = operation.as_object_mut() else {
        return;
    };
    let has_body = object.contains_key("requestBody");
    if has_body && let Some(responses) = object.get_mut("responses").and_then(Value::as_object_mut)
    {
        responses
            .entry("413")
            .or_insert_with(|| error_response("The body is larger than this route accepts"));
        responses.entry("415").or_insert_with(|| {
            error_response("The body is not of the content type this route takes")
        });
        responses
            .entry("400")
            .or_insert_with(|| error_response("The body is not valid"));
    }
    let Some(parameters) = object.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        let place = parameter["in"].as_str().unwrap_or_default().to_owned();
        let schema = &mut parameter["schema"];
        match (place.as_str(), name.as_str()) {
            ("query", "limit") => {
                schema["minimum"] = json!(1);
                schema["maximum"] = json!(1000);
            }
            ("query", "status") if path.starts_with("/v1/executions") => {
                schema["enum"] = json!(["ok", "failed"]);
            }
            ("query", "state") if path.starts_with("/v1/deliveries") => {
                schema["enum"] = json!(["queued", "succeeded", "dead", "cancelled"]);
            }
            ("path", "link") => set_pattern(schema, LINK_NAME),
            ("query", "end_user") => end_user_schema(schema),
            ("path", "id") if path.starts_with("/v1/end-users") => end_user_schema(schema),
            ("query", "owner") if path == "/v1/connections" => {
                schema["enum"] = json!(["all", "organisation"]);
            }
            ("path", "name") if path.starts_with("/v1/services") => {
                set_pattern(schema, SERVICE_NAME)
            }
            ("path", "name" | "plugin")
                if path.starts_with("/v1/plugins") || path.starts_with("/v1/hooks") =>
            {
                set_pattern(schema, PLUGIN_NAME)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns accept and refuse what the validators do.
    #[test]
    fn patterns_agree_with_the_validators() {
        let mut samples: Vec<String> = [
            "a",
            "ab",
            "a_b",
            "a-b",
            "a-",
            "A",
            "1a",
            "",
            "lead.created",
            "abc_def-1",
            "a.b",
            "é",
            "a b",
            "a*",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [49, 50, 51, 62, 63, 64, 128, 129] {
            samples.push("x".repeat(n));
        }
        let link = regex::Regex::new(LINK_NAME).unwrap();
        let service = regex::Regex::new(SERVICE_NAME).unwrap();
        let plugin = regex::Regex::new(PLUGIN_NAME).unwrap();
        let kind = regex::Regex::new(EVENT_KIND).unwrap();
        let end_user = regex::Regex::new(END_USER).unwrap();
        samples.extend(
            [
                "ana@example.com",
                "auth0|1",
                "a\u{a0}b",
                "a\tb",
                "a\u{85}",
                "\u{3000}x",
                "zoë",
            ]
            .map(str::to_owned),
        );
        for sample in &samples {
            let sample = sample.as_str();
            assert_eq!(
                link.is_match(sample),
                junction_store::validate_link_name(sample).is_ok(),
                "link name {sample:?}"
            );
            assert_eq!(
                service.is_match(sample),
                junction_store::validate_service_name(sample).is_ok(),
                "service name {sample:?}"
            );
            assert_eq!(
                plugin.is_match(sample),
                junction_store::validate_plugin_name(sample).is_ok(),
                "plugin name {sample:?}"
            );
            assert_eq!(
                kind.is_match(sample),
                junction_events::check_kind(sample).is_ok(),
                "event kind {sample:?}"
            );
            if sample.chars().count() <= 128 {
                assert_eq!(
                    end_user.is_match(sample),
                    junction_store::validate_end_user(sample).is_ok(),
                    "end user {sample:?}"
                );
            }
        }
    }
}
