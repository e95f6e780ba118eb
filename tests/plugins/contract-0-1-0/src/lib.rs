//! Test plugin: a component of the 0.1.0 contract, built from the copy of
//! that contract's WIT beside this crate (never to be edited), as every
//! plugin uploaded before 0.1.1 was. It imports `junction:plugin/*@0.1.0`
//! and knows only `invoke-url` and `invoke-many`, whose responses carry
//! their headers as pairs. Event `one` calls the URL in the payload once,
//! `many` twice at once, naming the connection in the payload if any.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use junction::plugin::http::{self, Method, Request, Response};
use junction::plugin::log::{self, Level};
use serde_json::{Value, json};

struct Contract;

fn request(payload: &Value) -> Request {
    Request {
        method: Method::Get,
        url: payload["url"].as_str().unwrap_or_default().to_owned(),
        query: vec![("from".to_owned(), "0.1.0".to_owned())],
        headers: vec![("x-contract".to_owned(), "0.1.0".to_owned())],
        body: None,
        connection: payload["connection"].as_str().map(str::to_owned),
        timeout_ms: None,
    }
}

fn answer(result: Result<Response, http::Error>) -> Value {
    match result {
        Ok(response) => json!({
            "status": response.status,
            "headers": response.headers,
            "body": String::from_utf8_lossy(&response.body),
        }),
        Err(err) => json!({ "error": format!("{err:?}") }),
    }
}

impl Guest for Contract {
    fn handle(event: Event) -> Result<String, String> {
        let payload: Value = serde_json::from_str(&event.payload).map_err(|e| e.to_string())?;
        log::log(
            Level::Info,
            &format!("0.1.0 plugin handling {}", event.kind),
        );
        let output = match event.kind.as_str() {
            "one" => answer(http::invoke_url(&request(&payload))),
            "many" => {
                let requests = [request(&payload), request(&payload)];
                Value::Array(
                    http::invoke_many(&requests)
                        .into_iter()
                        .map(answer)
                        .collect(),
                )
            }
            other => return Err(format!("unknown event kind {other}")),
        };
        Ok(output.to_string())
    }
}

export!(Contract);
