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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignEncoding;

/// Refuses any document libxml2 would decode as something other than UTF-8: a NUL byte (UTF-16
/// and UCS-4 are auto-detected from their first bytes, and no XML 1.0 document holds U+0000) or
/// an XML declaration naming another encoding. Without this, `<!DOCTYPE` can be spelt in UTF-7
/// (`+ADw-!DOCTYPE`) and pass the byte scan of `refuse_doctype`.
pub fn refuse_foreign_encoding(bytes: &[u8]) -> Result<(), ForeignEncoding> {
    if bytes.contains(&0) {
        return Err(ForeignEncoding);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Some(decl) = body.strip_prefix(b"<?xml") else {
        return Ok(());
    };
    let end = decl
        .windows(2)
        .position(|w| w == b"?>")
        .ok_or(ForeignEncoding)?;
    let decl = decl[..end].to_ascii_lowercase();
    let Some(at) = decl.windows(8).position(|w| w == b"encoding") else {
        return Ok(());
    };
    let rest: Vec<u8> = decl[at + 8..]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    match rest.as_slice() {
        [b'=', b'"', b'u', b't', b'f', b'-', b'8', b'"', ..]
        | [b'=', b'\'', b'u', b't', b'f', b'-', b'8', b'\'', ..] => Ok(()),
        _ => Err(ForeignEncoding),
    }
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

    #[test]
    fn only_utf8_is_accepted() {
        assert!(refuse_foreign_encoding(b"<r/>").is_ok());
        assert!(refuse_foreign_encoding(b"<?xml version=\"1.0\"?><r/>").is_ok());
        assert!(refuse_foreign_encoding(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><r/>").is_ok());
        assert!(refuse_foreign_encoding(
            b"\xEF\xBB\xBF<?xml version='1.0' encoding = 'utf-8'?><r/>"
        )
        .is_ok());
        assert!(
            refuse_foreign_encoding(b"<?xml version=\"1.0\" encoding=\"UTF-7\"?><r/>").is_err()
        );
        assert!(
            refuse_foreign_encoding(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r/>")
                .is_err()
        );
        assert!(
            refuse_foreign_encoding(b"<?xml version=\"1.0\" encoding=\"UTF-8x\"?><r/>").is_err()
        );
        assert!(refuse_foreign_encoding(b"<\0?\0x\0m\0l\0").is_err());
        assert!(refuse_foreign_encoding(b"<?xml version=\"1.0\"").is_err());
    }
}
