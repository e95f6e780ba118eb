//! Test plugin: each event kind tries one thing at the sandbox's edge and
//! reports what happened, so the tests can assert on it.

use junction_sdk::{Error, Event, Method, Request, Result, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Call {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    query: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

fn request(call: Call) -> Request {
    let method = match call.method.as_deref().unwrap_or("GET") {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        _ => Method::Get,
    };
    let mut request = Request::new(method, call.url).query(&call.query);
    if let Some(link) = call.connection {
        request = request.connection(link);
    }
    for (name, value) in call.headers {
        request = request.header(name, value);
    }
    if let Some(body) = call.body {
        request = request.body(body.into_bytes());
    }
    if let Some(ms) = call.timeout_ms {
        request = request.timeout(std::time::Duration::from_millis(ms));
    }
    request
}

fn answer(
    result: std::result::Result<junction_sdk::Response, junction_sdk::http::HttpError>,
) -> serde_json::Value {
    match result {
        Ok(response) => {
            // Printed, so a test can check that what the plugin saw (and
            // what it put in its log) holds no credential.
            // Large bodies (the batch tests' sized responses) are only
            // counted, so the output stays under the host's output limit.
            let size = response.bytes().len();
            let text = (size <= 64 * 1024).then(|| response.text());
            match &text {
                Some(text) => println!("got {} {}", response.status(), text),
                None => println!("got {} ({size} bytes)", response.status()),
            }
            json!({
                "status": response.status(),
                "body": text,
                "bytes": size,
                "headers": response.headers(),
            })
        }
        Err(err) => json!({ "error": err.to_string() }),
    }
}

fn call(call: Call) -> serde_json::Value {
    answer(request(call).send())
}

fn u64_field(event: &Event, name: &str) -> Result<u64> {
    event.payload::<serde_json::Value>()?[name]
        .as_u64()
        .ok_or_else(|| Error::msg(format!("the payload needs a number `{name}`")))
}

fn handle(event: Event) -> Result<serde_json::Value> {
    match event.kind.as_str() {
        "loop" => {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1024 * 1024]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("probe was asked to panic"),
        "fail" => Err(Error::msg("probe was asked to fail")),
        "escape" => {
            let file = std::fs::read_to_string("/etc/passwd")
                .map(|s| s.len())
                .map_err(|e| e.to_string());
            let dir = std::fs::read_dir("/")
                .map(|d| d.count())
                .map_err(|e| e.to_string());
            let env: Vec<(String, String)> = std::env::vars().collect();
            let args: Vec<String> = std::env::args().collect();
            let addr: String = event.payload::<serde_json::Value>()?["addr"]
                .as_str()
                .unwrap_or("127.0.0.1:9")
                .to_owned();
            let socket = std::net::TcpStream::connect(addr.as_str())
                .map(|_| ())
                .map_err(|e| e.to_string());
            let lookup = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80))
                .map(|a| a.count())
                .map_err(|e| e.to_string());
            Ok(json!({
                "file": format!("{file:?}"), "file_ok": file.is_ok(),
                "dir": format!("{dir:?}"), "dir_ok": dir.is_ok(),
                "env": env.len(), "args": args.len(),
                "socket": format!("{socket:?}"), "socket_ok": socket.is_ok(),
                "lookup": format!("{lookup:?}"), "lookup_ok": lookup.is_ok(),
            }))
        }
        "call" => Ok(call(event.payload()?)),
        "calls" => {
            let calls: Vec<Call> = event.payload()?;
            Ok(serde_json::Value::Array(
                calls.into_iter().map(call).collect(),
            ))
        }
        // Batches of calls, each sent at once with `send_all`.
        "batches" => {
            let batches: Vec<Vec<Call>> = event.payload()?;
            let mut answers = Vec::new();
            for batch in batches {
                let requests: Vec<Request> = batch.into_iter().map(request).collect();
                let batch: Vec<serde_json::Value> = junction_sdk::send_all(&requests)
                    .into_iter()
                    .map(answer)
                    .collect();
                answers.push(serde_json::Value::Array(batch));
            }
            Ok(serde_json::Value::Array(answers))
        }
        // The same GET `times` times, quietly: what `invoke-url` costs per
        // call, without the printing `calls` does.
        "gets" => {
            #[derive(Deserialize)]
            struct Fetch {
                url: String,
                times: u32,
            }
            let fetch: Fetch = event.payload()?;
            // Refused calls are counted, not fatal: the benches time
            // refusals too.
            let (mut ok, mut refused) = (0u32, 0u32);
            for _ in 0..fetch.times {
                match Request::get(fetch.url.as_str()).send() {
                    Ok(response) if response.status() == 200 => ok += 1,
                    Ok(_) => {}
                    Err(_) => refused += 1,
                }
            }
            Ok(json!({ "ok": ok, "refused": refused }))
        }
        "connections" => {
            let all: Vec<serde_json::Value> = junction_sdk::connections::all()
                .into_iter()
                .map(|c| {
                    json!({
                        "link_name": c.link_name, "service": c.service, "auth_type": c.auth_type,
                        "base_url": c.base_url, "metadata": c.metadata, "scopes": c.scopes,
                        "connected": c.status == junction_sdk::connections::Status::Connected,
                    })
                })
                .collect();
            let missing = junction_sdk::connections::get("not_granted").is_none();
            Ok(json!({ "all": all, "not_granted_hidden": missing }))
        }
        "print" => {
            let line = "x".repeat(1023);
            for _ in 0..1024 {
                println!("{line}");
            }
            eprintln!("done printing");
            Ok(json!("printed"))
        }
        "kv" => {
            let count: u64 = junction_sdk::kv::get_json("count")?.unwrap_or(0) + 1;
            junction_sdk::kv::set_json("count", &count)?;
            let big = junction_sdk::kv::set("big", &vec![0u8; 2 * 1024 * 1024]).is_err();
            Ok(
                json!({ "count": count, "keys": junction_sdk::kv::list_keys(""), "big_refused": big }),
            )
        }
        "big-output" => Ok(json!("y".repeat(2 * 1024 * 1024))),
        // Floods for the record's bounds: `n` empty log lines, `n` empty
        // printed lines, `n` calls with a `url_bytes` long URL, an error of
        // `mib` MiB, `n` distinct kv values of `kib` KiB.
        "log-flood" => {
            let n = u64_field(&event, "n")?;
            let long = "z".repeat(u64_field(&event, "line_bytes").unwrap_or(0) as usize);
            for _ in 0..n {
                junction_sdk::log::log(junction_sdk::log::Level::Info, &long);
            }
            Ok(json!({ "logged": n }))
        }
        "print-flood" => {
            let n = u64_field(&event, "n")?;
            for _ in 0..n {
                println!();
            }
            Ok(json!({ "printed": n }))
        }
        "call-flood" => {
            let n = u64_field(&event, "n")?;
            let url = format!(
                "{}/{}",
                event.payload::<serde_json::Value>()?["base"]
                    .as_str()
                    .unwrap_or("http://127.0.0.1:9"),
                "u".repeat(u64_field(&event, "url_bytes").unwrap_or(10) as usize)
            );
            let mut refused = 0u64;
            for _ in 0..n {
                if Request::get(url.as_str()).send().is_err() {
                    refused += 1;
                }
            }
            Ok(json!({ "refused": refused }))
        }
        "big-error" => {
            let mib = u64_field(&event, "mib")? as usize;
            Err(Error::msg("e".repeat(mib * 1024 * 1024)))
        }
        "kv-flood" => {
            let n = u64_field(&event, "n")?;
            let value = vec![3u8; u64_field(&event, "kib")? as usize * 1024];
            let mut stored = 0u64;
            let mut first_error = None;
            for i in 0..n {
                match junction_sdk::kv::set(&format!("flood/{i}"), &value) {
                    Ok(()) => stored += 1,
                    Err(err) => {
                        first_error.get_or_insert(err.to_string());
                    }
                }
            }
            Ok(json!({ "stored": stored, "error": first_error }))
        }
        // Fails the first `fail_times` attempts of each event, counted in kv
        // by event id: a delivery retried by the host succeeds after them.
        "flaky" => {
            let fail_times: u64 = event.payload::<serde_json::Value>()?["fail_times"]
                .as_u64()
                .unwrap_or(0);
            let key = format!("attempts/{}", event.id);
            let attempts: u64 = junction_sdk::kv::get_json(&key)?.unwrap_or(0) + 1;
            junction_sdk::kv::set_json(&key, &attempts)?;
            if attempts <= fail_times {
                Err(Error::msg(format!(
                    "flaky attempt {attempts} of event {} fails",
                    event.id
                )))
            } else {
                Ok(json!({ "attempts": attempts, "event_id": event.id }))
            }
        }
        "slow" => {
            let ms = event.payload::<serde_json::Value>()?["ms"]
                .as_u64()
                .unwrap_or(100);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(json!({ "slept_ms": ms }))
        }
        other => Err(Error::msg(format!("probe does not know `{other}`"))),
    }
}

junction_sdk::export!(handle);
