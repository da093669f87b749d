//! Escaping text for server-rendered HTML.

/// Escapes `&`, `<`, `>`, `"` and `'` so `text` is safe inside HTML element
/// content and quoted attribute values.
///
/// ```
/// assert_eq!(plinth_sdk::html::escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape("plain"), "plain");
        assert_eq!(
            super::escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
    }
}
