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
    hex::encode(bytes)
}
