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

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// What one pass over the parsed document found: enough to refuse wrapping, duplicate ids and
/// weak or exotic signature algorithms before xmlsec runs.
#[derive(Debug, Default)]
pub struct Shape {
    /// The root is a `samlp:Response` in the protocol namespace.
    pub root_is_response: bool,
    /// `saml:Assertion` elements anywhere, and how many sit directly under the root.
    pub assertions: usize,
    pub assertions_under_root: usize,
    /// The ID of the (first) assertion found directly under the root.
    pub assertion_id: Option<String>,
    pub encrypted_assertions: usize,
    pub encrypted_assertions_under_root: usize,
    pub signatures: usize,
    /// Some ID attribute value appears twice.
    pub duplicate_id: bool,
    /// The parsed tree holds a DTD, whatever spelling got it past the byte checks.
    pub has_dtd: bool,
    /// SignatureMethod, DigestMethod and Transform algorithm URIs, in any signature.
    pub signature_methods: Vec<String>,
    pub digest_methods: Vec<String>,
    pub transforms: Vec<String>,
}

/// Parses `text` (already checked for DOCTYPE) and walks every element once. Strictly: libxml's
/// default recovery would repair a broken document into some tree, and other parsers on the
/// way (xmlsec's, samael's serde) need not repair it the same way.
pub fn inspect(text: &str) -> Option<Shape> {
    let options = libxml::parser::ParserOptions {
        recover: false,
        no_net: true,
        ..Default::default()
    };
    let doc = libxml::parser::Parser::default()
        .parse_string_with_options(text, options)
        .ok()?;
    let root = doc.get_root_element()?;
    let ns_of = |n: &libxml::tree::Node| n.get_namespace().map(|ns| ns.get_href());
    let mut shape = Shape {
        root_is_response: root.get_name() == "Response"
            && ns_of(&root).as_deref() == Some(NS_PROTOCOL),
        ..Shape::default()
    };
    let mut sibling = root.get_prev_sibling();
    while let Some(node) = sibling {
        if matches!(
            node.get_type(),
            Some(libxml::tree::NodeType::DTDNode | libxml::tree::NodeType::DocumentTypeNode)
        ) {
            shape.has_dtd = true;
        }
        sibling = node.get_prev_sibling();
    }
    let mut ids = std::collections::HashSet::new();
    let mut stack = vec![(root, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if node.get_type() != Some(libxml::tree::NodeType::ElementNode) {
            continue;
        }
        // Any attribute spelled ID, Id or id counts: xmlsec resolves references through them.
        for name in ["ID", "Id", "id"] {
            if let Some(v) = node.get_attribute(name) {
                if !ids.insert(v) {
                    shape.duplicate_id = true;
                }
            }
        }
        let ns = ns_of(&node);
        match (node.get_name().as_str(), ns.as_deref()) {
            ("Assertion", Some(NS_ASSERTION)) => {
                shape.assertions += 1;
                if depth == 1 {
                    shape.assertions_under_root += 1;
                    if shape.assertion_id.is_none() {
                        shape.assertion_id = node.get_attribute("ID");
                    }
                }
            }
            ("EncryptedAssertion", Some(NS_ASSERTION)) => {
                shape.encrypted_assertions += 1;
                if depth == 1 {
                    shape.encrypted_assertions_under_root += 1;
                }
            }
            ("Signature", Some(NS_DSIG)) => shape.signatures += 1,
            (local @ ("SignatureMethod" | "DigestMethod" | "Transform"), Some(NS_DSIG)) => {
                let alg = node.get_attribute("Algorithm").unwrap_or_default();
                match local {
                    "SignatureMethod" => shape.signature_methods.push(alg),
                    "DigestMethod" => shape.digest_methods.push(alg),
                    _ => shape.transforms.push(alg),
                }
            }
            _ => {}
        }
        stack.extend(
            node.get_child_elements()
                .into_iter()
                .map(|c| (c, depth + 1)),
        );
    }
    Some(shape)
}

/// The local name and namespace URI of the root element of canonical XML (xmlsec's pre-digest
/// output). Exclusive canonicalisation declares every namespace the apex element uses on that
/// element itself, so the start tag alone answers.
pub fn canonical_root(c14n: &str) -> Option<(&str, &str)> {
    let start = c14n.find('<')?;
    let tag_end = c14n[start..].find('>')? + start;
    let tag = &c14n[start + 1..tag_end];
    let qname_end = tag
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(tag.len());
    let qname = &tag[..qname_end];
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    };
    let decl = match prefix {
        Some(p) => format!(" xmlns:{p}=\""),
        None => " xmlns=\"".to_owned(),
    };
    let at = tag.find(&decl)? + decl.len();
    let end = tag[at..].find('"')? + at;
    Some((local, &tag[at..end]))
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

/// xmlsec's default error callback prints to stderr, with fragments such as reference URIs from
/// the document being verified. Replace it, once, with one that logs only the failing xmlsec
/// function and reason code, at debug level: the refusal itself is reported by the caller.
pub fn quiet_xmlsec_errors() {
    use std::os::raw::{c_char, c_int};
    type Callback = unsafe extern "C" fn(
        file: *const c_char,
        line: c_int,
        func: *const c_char,
        error_object: *const c_char,
        error_subject: *const c_char,
        reason: c_int,
        msg: *const c_char,
    );
    extern "C" {
        fn xmlSecErrorsSetCallback(callback: Option<Callback>);
    }
    unsafe extern "C" fn to_tracing(
        _file: *const c_char,
        _line: c_int,
        func: *const c_char,
        _error_object: *const c_char,
        _error_subject: *const c_char,
        reason: c_int,
        _msg: *const c_char,
    ) {
        let func = if func.is_null() {
            std::borrow::Cow::Borrowed("?")
        } else {
            // SAFETY: xmlsec passes a NUL-terminated static function name or NULL.
            unsafe { std::ffi::CStr::from_ptr(func) }.to_string_lossy()
        };
        tracing::debug!(xmlsec_func = %func, reason, "xmlsec reported an error");
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sets a process-wide function pointer; the callback is a plain function that
        // reads only the NUL-terminated name xmlsec hands it.
        unsafe { xmlSecErrorsSetCallback(Some(to_tracing)) }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_root_reads_prefixed_and_default_namespaces() {
        assert_eq!(
            canonical_root(r#"<saml:Assertion xmlns:saml="urn:a" ID="x"><b/></saml:Assertion>"#),
            Some(("Assertion", "urn:a"))
        );
        assert_eq!(
            canonical_root(r#"<Response xmlns="urn:p"></Response>"#),
            Some(("Response", "urn:p"))
        );
        assert_eq!(canonical_root(r#"<x:Response xmlns:y="urn:p">"#), None);
    }

    #[test]
    fn inspect_counts_and_finds_duplicates() {
        let doc = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r"><saml:Assertion ID="_a"/><x ID="_a"><saml:Assertion ID="_b"/></x></samlp:Response>"#;
        let s = inspect(doc).unwrap();
        assert!(s.root_is_response);
        assert_eq!((s.assertions, s.assertions_under_root), (2, 1));
        assert_eq!(s.assertion_id.as_deref(), Some("_a"));
        assert!(s.duplicate_id);
    }

    #[test]
    fn inspect_never_repairs_a_broken_document() {
        let ok = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><a/></samlp:Response>"#;
        assert!(inspect(ok).is_some());
        assert!(inspect(&ok.replace("<a/>", "<a></b>")).is_none());
        assert!(inspect(&ok.replace("<a/>", "<a>")).is_none());
    }

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
