//! Ids that sort by time, and the clock they are read from.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A 128-bit id in hex that sorts by time: 48 bits of milliseconds since
/// the epoch, then 80 random bits (the layout of UUIDv7 and ULID). Ids made
/// close together sort close together, so the redb tables keyed by id are
/// written at their end rather than on a random page each: many fewer pages
/// change per commit.
pub fn new_id() -> String {
    let ms = now_ms() & 0xffff_ffff_ffff;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&rand::random::<[u8; 10]>());
    // Two of these are made per execution: written into a buffer of the
    // final size, where `hex::encode` collects chars into a growing string.
    let mut text = [0u8; 32];
    if hex::encode_to_slice(bytes, &mut text).is_err() {
        return hex::encode(bytes);
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_time_then_random_bits_in_lowercase_hex() {
        let before = now_ms();
        let first = new_id();
        let second = new_id();
        for id in [&first, &second] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        let millis = u64::from_str_radix(&first[..12], 16).expect("the time prefix is hex");
        assert!(
            millis >= before && millis <= now_ms(),
            "{millis} vs {before}"
        );
        assert_ne!(first[12..], second[12..], "the random part repeats");
        let bytes = hex::decode(&first).expect("hex");
        assert_eq!(
            hex::encode(bytes),
            first,
            "the same text as hex::encode gives"
        );
    }
}
