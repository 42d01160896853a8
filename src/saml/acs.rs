//! The ACS step: from the posted `SAMLResponse` to a verified assertion.
//!
//! `verify` is pure and synchronous (CPU-bound XML work; callers run it on the blocking pool): it
//! checks the signature against the configured IdP certificates only, then reads every claim from
//! the exact bytes the signature covers (xmlsec's pre-digest output), and makes every time check
//! itself against the `now` it is given. samael's own checks (wall clock, lenient) are never
//! called. `accept` adds what needs the store: single-use InResponseTo and the replay cache.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use samael::crypto::{AllowedSignatureAlgorithm, CryptoProvider, ReduceMode, XmlSec};
use samael::schema::{Assertion, Response};
use serde::{Deserialize, Serialize};

use super::xml::{refuse_doctype, refuse_foreign_encoding};
use crate::config::SamlConnection;
use crate::policy::Email;
use crate::store::{self, KvStore, Namespace, StoreError};

const SAML_ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
/// Largest decoded SAMLResponse accepted; real responses are a few KiB, large group lists
/// rarely reach 100 KiB.
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// Signature algorithms accepted by default: SHA-1 is refused.
const ALLOWED_ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// Why a response was refused. The `Display` text is safe to show to the user; nothing from the
/// document itself is ever included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcsError {
    #[error("the SAML response is missing or is not valid base64")]
    Encoding,
    #[error("the SAML response is too large")]
    TooLarge,
    #[error("the SAML response contains a DOCTYPE, which is never accepted")]
    Doctype,
    #[error("the SAML response is not well-formed SAML")]
    Malformed,
    #[error("the SAML response must contain exactly one assertion")]
    AssertionCount,
    #[error("the SAML response is encrypted, which this connection does not support yet")]
    Encrypted,
    #[error("the SAML response's signature is missing, invalid, uses a refused algorithm, or is not from the configured identity provider")]
    Signature,
    #[error("the SAML response comes from an unexpected issuer")]
    Issuer,
    #[error("the SAML response is addressed to another destination")]
    Destination,
    #[error("the identity provider did not authenticate the user (status {0})")]
    Status(String),
    #[error("the SAML assertion is meant for another service (audience)")]
    Audience,
    #[error("the SAML assertion is not valid yet (check the clocks of the identity provider and the bridge)")]
    NotYetValid,
    #[error("the SAML assertion has expired")]
    Expired,
    #[error("the SAML assertion does not state that the user signed in (no AuthnStatement)")]
    AuthnStatement,
    #[error("the SAML assertion has no usable bearer subject confirmation")]
    SubjectConfirmation,
    #[error("the SAML assertion is addressed to another recipient")]
    Recipient,
    #[error("the SAML response does not answer a login started here, or that login was already completed")]
    InResponseTo,
    #[error("this SAML assertion was already used")]
    Replay,
    #[error("the SAML assertion names no subject usable as a stable identity")]
    Subject,
    #[error("the SAML assertion carries no valid email address")]
    Email,
    #[error("the session store is unavailable")]
    Store,
}

impl AcsError {
    /// A short stable name for logs, audit events and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            AcsError::Encoding => "encoding",
            AcsError::TooLarge => "too_large",
            AcsError::Doctype => "doctype",
            AcsError::Malformed => "malformed",
            AcsError::AssertionCount => "assertion_count",
            AcsError::Encrypted => "encrypted",
            AcsError::Signature => "signature",
            AcsError::Issuer => "issuer",
            AcsError::Destination => "destination",
            AcsError::Status(_) => "status",
            AcsError::Audience => "audience",
            AcsError::NotYetValid => "not_yet_valid",
            AcsError::Expired => "expired",
            AcsError::AuthnStatement => "authn_statement",
            AcsError::SubjectConfirmation => "subject_confirmation",
            AcsError::Recipient => "recipient",
            AcsError::InResponseTo => "in_response_to",
            AcsError::Replay => "replay",
            AcsError::Subject => "subject",
            AcsError::Email => "email",
            AcsError::Store => "store",
        }
    }
}

impl From<StoreError> for AcsError {
    fn from(_: StoreError) -> Self {
        AcsError::Store
    }
}

/// Claims read from the signed assertion, after every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub assertion_id: String,
    pub in_response_to: String,
    pub subject: String,
    pub email: Email,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// The latest instant the assertion may be used: how long its id stays in the replay cache.
    pub expires_at: DateTime<Utc>,
}

/// Decodes the base64 form field value.
pub fn decode_form_value(saml_response: &str) -> Result<Vec<u8>, AcsError> {
    let compact: String = saml_response.split_ascii_whitespace().collect();
    if compact.len() > MAX_RESPONSE_BYTES * 4 / 3 + 4 {
        return Err(AcsError::TooLarge);
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| AcsError::Encoding)
}

/// Verifies a decoded SAMLResponse for `conn` at `now`. Pure; CPU-bound.
pub fn verify(
    xml: &[u8],
    conn: &SamlConnection,
    now: DateTime<Utc>,
) -> Result<VerifiedAssertion, AcsError> {
    if xml.is_empty() {
        return Err(AcsError::Encoding);
    }
    if xml.len() > MAX_RESPONSE_BYTES {
        return Err(AcsError::TooLarge);
    }
    refuse_foreign_encoding(xml).map_err(|_| AcsError::Malformed)?;
    refuse_doctype(xml).map_err(|_| AcsError::Doctype)?;
    let text = std::str::from_utf8(xml).map_err(|_| AcsError::Malformed)?;
    let counts = count_assertions(text)?;
    if counts.encrypted > 0 {
        return Err(AcsError::Encrypted);
    }
    if counts.plain != 1 {
        return Err(AcsError::AssertionCount);
    }

    let signed = XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        text,
        &conn.idp.signing_certs,
        ReduceMode::PreDigest,
        Some(ALLOWED_ALGORITHMS),
    )
    .map_err(|_| AcsError::Signature)?;

    // The signed bytes are either the whole Response (response signed) or the Assertion alone
    // (only the assertion signed); in the second case the envelope is read from the raw document
    // for its Destination/Status/InResponseTo, which are checked but never trusted for claims.
    let (envelope, assertion) = match root_local_name(&signed) {
        Some("Response") => {
            let mut response = signed
                .parse::<Response>()
                .map_err(|_| AcsError::Malformed)?;
            let assertion = response.assertion.take().ok_or(AcsError::AssertionCount)?;
            (response, assertion)
        }
        Some("Assertion") => {
            let assertion = signed
                .parse::<Assertion>()
                .map_err(|_| AcsError::Malformed)?;
            let envelope = text.parse::<Response>().map_err(|_| AcsError::Malformed)?;
            (envelope, assertion)
        }
        // A signature over anything else (an Issuer, an attribute) covers no claims.
        _ => return Err(AcsError::Signature),
    };
    if root_local_name(text) != Some("Response") {
        return Err(AcsError::Malformed);
    }

    check_envelope(&envelope, conn)?;
    let in_response_to = check_assertion(&assertion, conn, now)?;
    if envelope
        .in_response_to
        .as_deref()
        .is_some_and(|id| id != in_response_to)
    {
        return Err(AcsError::InResponseTo);
    }
    extract_claims(&assertion, conn, in_response_to, now)
}

/// The local name of the first element in `xml` (serde's XML parsing does not check it).
fn root_local_name(xml: &str) -> Option<&str> {
    let mut rest = xml;
    loop {
        let start = rest.find('<')?;
        rest = &rest[start + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let qname = &rest[..end];
        return Some(qname.rsplit(':').next().unwrap_or(qname));
    }
}

struct AssertionCounts {
    plain: usize,
    encrypted: usize,
}

/// Counts SAML assertions anywhere in the document, so a second, unsigned assertion next to a
/// signed one is refused outright rather than merely ignored.
fn count_assertions(text: &str) -> Result<AssertionCounts, AcsError> {
    let doc = libxml::parser::Parser::default()
        .parse_string(text)
        .map_err(|_| AcsError::Malformed)?;
    let root = doc.get_root_element().ok_or(AcsError::Malformed)?;
    // Belt and braces behind the byte checks: whatever spelling got it past them, a document
    // whose tree holds a DTD is refused.
    let mut sibling = root.get_prev_sibling();
    while let Some(node) = sibling {
        if matches!(
            node.get_type(),
            Some(libxml::tree::NodeType::DTDNode | libxml::tree::NodeType::DocumentTypeNode)
        ) {
            return Err(AcsError::Doctype);
        }
        sibling = node.get_prev_sibling();
    }
    let mut counts = AssertionCounts {
        plain: 0,
        encrypted: 0,
    };
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.get_type() == Some(libxml::tree::NodeType::ElementNode) {
            let in_ns = node
                .get_namespace()
                .is_some_and(|ns| ns.get_href() == SAML_ASSERTION_NS);
            match node.get_name().as_str() {
                "Assertion" if in_ns => counts.plain += 1,
                "EncryptedAssertion" if in_ns => counts.encrypted += 1,
                _ => {}
            }
            stack.extend(node.get_child_elements());
        }
    }
    Ok(counts)
}

fn check_envelope(response: &Response, conn: &SamlConnection) -> Result<(), AcsError> {
    if let Some(issuer) = response.issuer.as_ref().and_then(|i| i.value.as_deref()) {
        if issuer != conn.idp.entity_id {
            return Err(AcsError::Issuer);
        }
    }
    if response.destination.as_deref() != Some(conn.acs_url.as_str()) {
        return Err(AcsError::Destination);
    }
    let status = response
        .status
        .as_ref()
        .and_then(|s| s.status_code.value.as_deref())
        .unwrap_or("(none)");
    if status != STATUS_SUCCESS {
        return Err(AcsError::Status(
            status
                .rsplit(':')
                .next()
                .unwrap_or(status)
                .chars()
                .take(64)
                .collect(),
        ));
    }
    Ok(())
}

/// Checks issuer, audience, time window and the bearer confirmation; returns InResponseTo.
fn check_assertion(
    a: &Assertion,
    conn: &SamlConnection,
    now: DateTime<Utc>,
) -> Result<String, AcsError> {
    let skew = chrono::Duration::from_std(conn.clock_skew).unwrap_or_default();
    if a.issuer.value.as_deref() != Some(conn.idp.entity_id.as_str()) {
        return Err(AcsError::Issuer);
    }
    if a.issue_instant > now + skew {
        return Err(AcsError::NotYetValid);
    }
    // SAML profiles §4.1.4.2: an SSO assertion MUST carry an AuthnStatement.
    if a.authn_statements.as_deref().is_none_or(|s| s.is_empty()) {
        return Err(AcsError::AuthnStatement);
    }
    let conditions = a.conditions.as_ref().ok_or(AcsError::Audience)?;
    // Every AudienceRestriction must name us (SAML core §2.5.1.4); at least one must exist.
    let restrictions = conditions
        .audience_restrictions
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or(AcsError::Audience)?;
    if !restrictions
        .iter()
        .all(|r| r.audience.iter().any(|aud| aud == &conn.sp_entity_id))
    {
        return Err(AcsError::Audience);
    }
    check_window(conditions.not_before, conditions.not_on_or_after, now, skew)?;

    let confirmations = a
        .subject
        .as_ref()
        .and_then(|s| s.subject_confirmations.as_deref())
        .unwrap_or_default();
    let mut first_error = AcsError::SubjectConfirmation;
    for c in confirmations
        .iter()
        .filter(|c| c.method.as_deref() == Some(BEARER))
    {
        let Some(data) = c.subject_confirmation_data.as_ref() else {
            continue;
        };
        let outcome = (|| {
            if data.not_on_or_after.is_none() {
                return Err(AcsError::SubjectConfirmation);
            }
            check_window(data.not_before, data.not_on_or_after, now, skew)?;
            if data.recipient.as_deref() != Some(conn.acs_url.as_str()) {
                return Err(AcsError::Recipient);
            }
            data.in_response_to
                .clone()
                .filter(|id| !id.is_empty())
                .ok_or(AcsError::InResponseTo)
        })();
        match outcome {
            Ok(id) => return Ok(id),
            Err(e) if first_error == AcsError::SubjectConfirmation => first_error = e,
            Err(_) => {}
        }
    }
    Err(first_error)
}

/// NotBefore is inclusive, NotOnOrAfter exclusive; both widened by the configured skew.
fn check_window(
    not_before: Option<DateTime<Utc>>,
    not_on_or_after: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    skew: chrono::Duration,
) -> Result<(), AcsError> {
    if not_before.is_some_and(|nb| now + skew < nb) {
        return Err(AcsError::NotYetValid);
    }
    if not_on_or_after.is_some_and(|noa| now - skew >= noa) {
        return Err(AcsError::Expired);
    }
    Ok(())
}

fn extract_claims(
    a: &Assertion,
    conn: &SamlConnection,
    in_response_to: String,
    now: DateTime<Utc>,
) -> Result<VerifiedAssertion, AcsError> {
    let names = &conn.attributes;
    let subject = match &names.subject {
        Some(attr) => attribute_values(a, attr).into_iter().next(),
        None => a
            .subject
            .as_ref()
            .and_then(|s| s.name_id.as_ref())
            .filter(|n| n.format.as_deref() != Some(NAMEID_TRANSIENT))
            .map(|n| n.value.trim().to_owned()),
    }
    .filter(|s| !s.is_empty())
    .ok_or(AcsError::Subject)?;

    let email = attribute_values(a, &names.email)
        .into_iter()
        .next()
        .and_then(|v| Email::parse(&v).ok())
        .ok_or(AcsError::Email)?;
    let name = attribute_values(a, &names.name)
        .into_iter()
        .next()
        .filter(|n| !n.trim().is_empty());
    let mut groups: Vec<String> = Vec::new();
    for g in attribute_values(a, &names.groups) {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }

    let skew = chrono::Duration::from_std(conn.clock_skew).unwrap_or_default();
    let latest = a
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .into_iter()
        .chain(
            a.subject
                .iter()
                .flat_map(|s| s.subject_confirmations.iter().flatten())
                .filter_map(|c| c.subject_confirmation_data.as_ref())
                .filter_map(|d| d.not_on_or_after),
        )
        .max()
        .unwrap_or(now);
    Ok(VerifiedAssertion {
        assertion_id: a.id.clone(),
        in_response_to,
        subject,
        email,
        name,
        groups,
        expires_at: latest + skew,
    })
}

/// All values of the attributes named `name` (by Name, else FriendlyName), in document order,
/// whether sent as one multi-valued attribute or as the attribute repeated.
fn attribute_values(a: &Assertion, name: &str) -> Vec<String> {
    let attrs: Vec<_> = a
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| s.attributes.iter())
        .collect();
    let by_name: Vec<_> = attrs
        .iter()
        .filter(|at| at.name.as_deref() == Some(name))
        .collect();
    let chosen = if by_name.is_empty() {
        attrs
            .iter()
            .filter(|at| at.friendly_name.as_deref() == Some(name))
            .collect()
    } else {
        by_name
    };
    chosen
        .into_iter()
        .flat_map(|at| at.values.iter())
        .filter_map(|v| v.value.as_ref())
        .map(|v| v.trim().to_owned())
        .collect()
}

/// What the ACS remembers about an AuthnRequest it sent (keyed by the request id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentRequest {
    pub login_id: String,
    pub connection_id: String,
}

/// Records a sent AuthnRequest so exactly one response can answer it.
pub async fn remember_request(
    store: &dyn KvStore,
    request_id: &str,
    sent: &SentRequest,
    ttl: Duration,
) -> Result<(), StoreError> {
    store::put_json(store, Namespace::SamlRequest, request_id, sent, ttl).await
}

/// Completes the checks that need the store: the response must answer a request this bridge
/// sent for this connection and this login (taken, so single use), and its assertion id must be
/// new (kept until the assertion expires, across instances when the store is shared).
pub async fn accept(
    store: &dyn KvStore,
    verified: &VerifiedAssertion,
    connection_id: &str,
    login_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AcsError> {
    let sent: SentRequest =
        store::take_json(store, Namespace::SamlRequest, &verified.in_response_to)
            .await?
            .ok_or(AcsError::InResponseTo)?;
    if sent.connection_id != connection_id || sent.login_id != login_id {
        return Err(AcsError::InResponseTo);
    }
    let ttl = (verified.expires_at - now)
        .to_std()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    let fresh = store
        .put_if_absent(
            Namespace::AssertionReplay,
            &verified.assertion_id,
            Vec::new(),
            ttl,
        )
        .await?;
    if !fresh {
        return Err(AcsError::Replay);
    }
    Ok(())
}
