//! Bounding texts a plugin or a provider controls before they are kept.

/// `text` cut to at most `max` bytes (on a character boundary), ending in a
/// marker that says how many bytes were cut; unchanged when it fits.
pub fn truncate_with_marker(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let marker_room = 48.min(max);
    let mut end = max - marker_room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let marker = format!("… [{} of {total} bytes cut]", total - end);
    if text.len() + marker.len() <= max {
        text.push_str(&marker);
    }
    text
}
