//! Small XML helpers shared by the SAML steps: escaping for documents we write, and the checks
//! that run on hostile bytes before any parser sees them.

/// Escapes text for use in XML attribute values and text nodes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoctypeFound;

/// Refuses any document type declaration or entity declaration. SAML never needs one, and it is
/// the door to external entities and expansion bombs. Checked on raw bytes, before parsing.
pub fn refuse_doctype(bytes: &[u8]) -> Result<(), DoctypeFound> {
    let found = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if found(b"<!DOCTYPE") || found(b"<!ENTITY") {
        return Err(DoctypeFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }

    #[test]
    fn doctype_in_any_case_is_refused() {
        assert!(refuse_doctype(b"<r/>").is_ok());
        assert!(refuse_doctype(b"<!DOCTYPE r><r/>").is_err());
        assert!(refuse_doctype(b"<!doctype r><r/>").is_err());
        assert!(refuse_doctype(b"<r><!ENTITY x 'y'></r>").is_err());
    }
}
