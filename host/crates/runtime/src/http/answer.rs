//! A response as the host holds it until the guest gets it: the status, the
//! headers packed into one block of `name: value\n` lines (without the
//! headers that carry the host's session) and the body. A plugin of the
//! 0.1.1 contract gets it as a `reply`, the block as it is: one string for
//! the canonical ABI to copy into the guest, where a list of pairs costs two
//! of the guest's allocations per header. `invoke-url` and `invoke-many`
//! split the block into the pairs of a `response`.

use reqwest::header::HeaderMap;

use crate::bindings::junction::plugin::http::{Reply, Response};

/// Response headers a plugin never sees: they carry the session the host holds.
const HIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "set-cookie2"];

/// A response read whole, headers packed.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    /// One `name: value\n` line per header, names in lower case.
    pub(super) headers: String,
    pub(super) body: Vec<u8>,
}

impl Answer {
    /// The answer as `send` and `send-many` give it.
    pub(super) fn into_reply(self) -> Reply {
        Reply {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }

    /// The answer as `invoke-url` and `invoke-many` give it.
    pub(super) fn into_response(self) -> Response {
        Response {
            status: self.status,
            headers: header_pairs(&self.headers)
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            body: self.body,
        }
    }
}

/// Packs `headers` in the order received, leaving out the hidden ones; a
/// value that is not UTF-8 has its bad bytes replaced. Neither a name nor a
/// value can hold `\n` (`HeaderValue` refuses control characters), so the
/// lines cannot be confused.
pub(super) fn pack_headers(headers: &HeaderMap) -> String {
    let size = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 3)
        .sum();
    let mut block = String::with_capacity(size);
    for (name, value) in headers {
        let name = name.as_str();
        if HIDDEN_RESPONSE_HEADERS.contains(&name) {
            continue;
        }
        block.push_str(name);
        block.push_str(": ");
        // Borrowed, not copied, when the value is UTF-8 already.
        block.push_str(&String::from_utf8_lossy(value.as_bytes()));
        block.push('\n');
    }
    block
}

/// The name and value of each line of a packed block.
pub(super) fn header_pairs(block: &str) -> impl Iterator<Item = (&str, &str)> {
    block.split_terminator('\n').map(|line| {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        (name, value.strip_prefix(' ').unwrap_or(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    #[test]
    fn packing_keeps_order_and_repeats_and_leaves_out_the_session() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", HeaderValue::from_static("text/plain"));
        headers.append("set-cookie", HeaderValue::from_static("session=1"));
        headers.append("x-list", HeaderValue::from_static("a"));
        headers.append("x-list", HeaderValue::from_static("b: c"));
        headers.append("x-empty", HeaderValue::from_static(""));
        headers.append(
            "x-latin",
            HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value"),
        );
        let block = pack_headers(&headers);
        assert_eq!(
            block,
            "content-type: text/plain\nx-list: a\nx-list: b: c\nx-empty: \nx-latin: caf\u{fffd}\n"
        );
        let pairs: Vec<_> = header_pairs(&block).collect();
        assert_eq!(
            pairs,
            [
                ("content-type", "text/plain"),
                ("x-list", "a"),
                ("x-list", "b: c"),
                ("x-empty", ""),
                ("x-latin", "caf\u{fffd}"),
            ]
        );
    }

    proptest::proptest! {
        /// Whatever valid headers come back, splitting the block gives
        /// them back as sent.
        #[test]
        fn a_packed_block_splits_into_the_headers(
            headers in proptest::collection::vec(("[a-z][a-z0-9-]{0,12}", "[ -~\t]{0,24}"), 0..8),
        ) {
            let mut map = HeaderMap::new();
            let mut expected = Vec::new();
            for (name, value) in &headers {
                let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
                if HIDDEN_RESPONSE_HEADERS.contains(&name.as_str()) {
                    continue;
                }
                map.append(name.clone(), HeaderValue::from_str(value).unwrap());
            }
            for (name, value) in &map {
                expected.push((name.as_str().to_owned(), value.to_str().unwrap().to_owned()));
            }
            let block = pack_headers(&map);
            let pairs: Vec<(String, String)> = header_pairs(&block)
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            proptest::prop_assert_eq!(pairs, expected);
        }
    }
}
