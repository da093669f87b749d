//! Text from the vendor, cut to a bounded length before the agent logs it,
//! shows it in `GET /api/admin/agent`, stores it in its ledger or puts it in
//! a report. A hostile vendor can send megabytes in an error message, a
//! cancel reason or an id; whatever of it the host keeps is at most
//! [`FIELD_LIMIT`] bytes plus a note of the original length. The cut is
//! always on a character boundary, so no input can make it panic.

/// Most bytes of one vendor-supplied field the agent keeps.
pub const FIELD_LIMIT: usize = 1024;

/// `text` cut to [`FIELD_LIMIT`] bytes (see [`bounded_to`]).
pub fn bounded(text: &str) -> String {
    bounded_to(text, FIELD_LIMIT)
}

/// `text` whole if it fits in `max` bytes; otherwise its longest prefix of
/// at most `max` bytes that ends on a character boundary, an ellipsis and
/// the original length.
pub fn bounded_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    // Index 0 is always a boundary, so this ends.
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = text.get(..end).unwrap_or_default();
    format!("{kept}… ({} bytes in all)", text.len())
}

/// Bytes of unknown encoding (an HTTP body), decoded lossily and bounded
/// to `max` bytes; only the first `max` bytes are decoded.
pub fn bounded_bytes(bytes: &[u8], max: usize) -> String {
    let head = bytes.get(..max.min(bytes.len())).unwrap_or_default();
    let text = String::from_utf8_lossy(head);
    if bytes.len() <= max {
        return text.into_owned();
    }
    // A character cut at `max` decodes to U+FFFD; drop it.
    let text = text.trim_end_matches('\u{fffd}');
    format!("{text}… ({} bytes in all)", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(bounded("cannot read"), "cannot read");
        assert_eq!(bounded_to("abc", 3), "abc");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_its_length() {
        // 'é' is two bytes: byte 3 falls inside the second one.
        let text = "aéé";
        assert_eq!(bounded_to(text, 4), "aé… (5 bytes in all)");
        let text = format!("{}€tail", "x".repeat(FIELD_LIMIT - 1));
        let cut = bounded(&text);
        assert!(cut.starts_with(&"x".repeat(FIELD_LIMIT - 1)));
        assert!(cut.ends_with(&format!("… ({} bytes in all)", text.len())));
        assert!(!cut.contains('€'));
        for max in 0..12 {
            let _ = bounded_to("ä€😀ü", max);
        }
    }

    #[test]
    fn bytes_are_decoded_lossily_and_bounded() {
        let mut body = "é".repeat(200).into_bytes();
        body.extend(std::iter::repeat_n(0xff, 10_000));
        let cut = bounded_bytes(&body, 301);
        assert!(cut.starts_with("éé"));
        assert!(cut.ends_with("(10400 bytes in all)"), "{cut}");
        assert!(cut.len() < 340);
        assert_eq!(bounded_bytes(b"ok", 300), "ok");
    }
}
