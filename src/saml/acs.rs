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

use super::claims;
use super::metadata::IdpMetadata;
use super::xml::{
    self, canonical_root, refuse_doctype, refuse_foreign_encoding, NS_ASSERTION, NS_PROTOCOL,
};
use crate::config::{SamlConnection, SignedPart};
use crate::policy::Email;
use crate::store::{self, KvStore, Namespace, StoreError};

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// Largest decoded SAMLResponse accepted; real responses are a few KiB, large group lists
/// rarely reach 100 KiB.
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

const SHA2_SIGNATURES: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const SHA2_DIGESTS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// The only transforms a SAML signature needs; anything else (XPath, XSLT) is attack surface.
const TRANSFORMS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];

/// Signature algorithms xmlsec is told to accept when SHA-1 is refused.
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
    #[error("the SAML response is not signed")]
    Unsigned,
    #[error(
        "the SAML response's signature is invalid or is not from the configured identity provider"
    )]
    Signature,
    #[error("the SAML response is signed with an algorithm this connection refuses (SHA-1 needs allow_sha1)")]
    Algorithm,
    #[error(
        "the SAML response is not signed the way this connection requires ({0} must be signed)"
    )]
    SignaturePolicy(&'static str),
    #[error("the SAML response contains the same ID twice")]
    DuplicateId,
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
    #[error("the identity provider's metadata could not be loaded yet")]
    MetadataUnavailable,
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
    #[error("the SAML assertion has no attribute `{attribute}` (configured for this connection); attributes received: {}", received.join(", "))]
    MissingAttribute {
        attribute: String,
        received: Vec<String>,
    },
    #[error("the SAML attribute `{0}` has several different values, so the user is ambiguous")]
    AmbiguousAttribute(String),
    #[error("Entra ID group overage: the user is in too many groups for the token, so the IdP sent a link instead of the groups. Configure the Entra ID application to send only groups assigned to the application (or a group filter)")]
    GroupOverage,
    #[error(
        "unsolicited SAML responses (IdP-initiated login) are not enabled for this connection"
    )]
    Unsolicited,
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
            AcsError::Unsigned => "unsigned",
            AcsError::Signature => "signature",
            AcsError::Algorithm => "algorithm",
            AcsError::SignaturePolicy(_) => "signature_policy",
            AcsError::DuplicateId => "duplicate_id",
            AcsError::Issuer => "issuer",
            AcsError::Destination => "destination",
            AcsError::Status(_) => "status",
            AcsError::Audience => "audience",
            AcsError::NotYetValid => "not_yet_valid",
            AcsError::Expired => "expired",
            AcsError::MetadataUnavailable => "metadata_unavailable",
            AcsError::AuthnStatement => "authn_statement",
            AcsError::SubjectConfirmation => "subject_confirmation",
            AcsError::Recipient => "recipient",
            AcsError::InResponseTo => "in_response_to",
            AcsError::Replay => "replay",
            AcsError::Subject => "subject",
            AcsError::Email => "email",
            AcsError::MissingAttribute { .. } => "missing_attribute",
            AcsError::AmbiguousAttribute(_) => "ambiguous_attribute",
            AcsError::GroupOverage => "group_overage",
            AcsError::Unsolicited => "unsolicited",
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
    /// None: an unsolicited (IdP-initiated) response.
    pub in_response_to: Option<String>,
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
    xml::quiet_xmlsec_errors();
    refuse_foreign_encoding(xml).map_err(|_| AcsError::Malformed)?;
    refuse_doctype(xml).map_err(|_| AcsError::Doctype)?;
    let text = std::str::from_utf8(xml).map_err(|_| AcsError::Malformed)?;
    let shape = xml::inspect(text).ok_or(AcsError::Malformed)?;
    if shape.has_dtd {
        return Err(AcsError::Doctype);
    }
    if !shape.root_is_response {
        return Err(AcsError::Malformed);
    }
    if shape.duplicate_id {
        return Err(AcsError::DuplicateId);
    }
    if shape.encrypted_assertions > 0 {
        return Err(AcsError::Encrypted);
    }
    // Exactly one assertion in the whole document, directly under the Response: every
    // signature-wrapping placement (XSW1-8) needs a second copy or a moved one.
    if shape.assertions != 1 || shape.assertions_under_root != 1 {
        return Err(AcsError::AssertionCount);
    }
    if shape.signatures == 0 {
        return Err(AcsError::Unsigned);
    }
    check_algorithms(&shape, conn.allow_sha1)?;

    // Every signature in the document must verify against a configured certificate (a second
    // signature by another key is fatal, field case 003 D); the result is the canonical bytes
    // the signature covers, and every claim is read from those bytes only.
    let idp = conn.idp.current().ok_or(AcsError::MetadataUnavailable)?;
    let signed = XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        text,
        &idp.signing_certs,
        ReduceMode::PreDigest,
        (!conn.allow_sha1).then_some(ALLOWED_ALGORITHMS),
    )
    .map_err(|_| AcsError::Signature)?;

    let (envelope, assertion) = match canonical_root(&signed) {
        Some(("Response", NS_PROTOCOL)) => {
            let mut response = signed
                .parse::<Response>()
                .map_err(|_| AcsError::Malformed)?;
            let assertion = response.assertion.take().ok_or(AcsError::AssertionCount)?;
            if conn.require_signed == SignedPart::Assertion
                && !assertion_signature_covers_itself(&assertion)
            {
                return Err(AcsError::SignaturePolicy("the assertion"));
            }
            (response, assertion)
        }
        Some(("Assertion", NS_ASSERTION)) => {
            if conn.require_signed == SignedPart::Response {
                return Err(AcsError::SignaturePolicy("the response"));
            }
            let assertion = signed
                .parse::<Assertion>()
                .map_err(|_| AcsError::Malformed)?;
            // The one assertion of the document must be the signed one.
            if shape.assertion_id.as_deref() != Some(assertion.id.as_str()) {
                return Err(AcsError::AssertionCount);
            }
            // Only the assertion is signed: the envelope is read from the raw document for its
            // Destination/Status/InResponseTo, which are checked but never trusted for claims.
            let envelope = text.parse::<Response>().map_err(|_| AcsError::Malformed)?;
            (envelope, assertion)
        }
        // A signature over anything else (an Issuer, an extension) covers no claims.
        _ => return Err(AcsError::Signature),
    };

    check_envelope(&envelope, conn, &idp)?;
    let confirmed = check_assertion(&assertion, conn, &idp, now)?;
    let in_response_to = match (envelope.in_response_to.as_deref(), confirmed) {
        (Some(r), Some(c)) if r != c => return Err(AcsError::InResponseTo),
        (_, Some(c)) => Some(c),
        (Some(r), None) if !r.is_empty() => Some(r.to_owned()),
        _ => None,
    };
    let claims = claims::extract(&assertion, &conn.attributes)?;

    let skew = chrono::Duration::from_std(conn.clock_skew).unwrap_or_default();
    let latest = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .into_iter()
        .chain(
            assertion
                .subject
                .iter()
                .flat_map(|s| s.subject_confirmations.iter().flatten())
                .filter_map(|c| c.subject_confirmation_data.as_ref())
                .filter_map(|d| d.not_on_or_after),
        )
        .max()
        .unwrap_or(now);
    Ok(VerifiedAssertion {
        assertion_id: assertion.id.clone(),
        in_response_to,
        subject: claims.subject,
        email: claims.email,
        name: claims.name,
        groups: claims.groups,
        expires_at: latest + skew,
    })
}

/// Our own algorithm allow-list, checked on every signature before xmlsec runs: distinct error
/// for SHA-1, and no XPath/XSLT transforms at all.
fn check_algorithms(shape: &xml::Shape, allow_sha1: bool) -> Result<(), AcsError> {
    let sig_ok =
        |alg: &String| SHA2_SIGNATURES.contains(&alg.as_str()) || (allow_sha1 && alg == RSA_SHA1);
    let digest_ok =
        |alg: &String| SHA2_DIGESTS.contains(&alg.as_str()) || (allow_sha1 && alg == SHA1);
    if !shape.signature_methods.iter().all(sig_ok) || !shape.digest_methods.iter().all(digest_ok) {
        return Err(AcsError::Algorithm);
    }
    if !shape
        .transforms
        .iter()
        .all(|t| TRANSFORMS.contains(&t.as_str()))
    {
        return Err(AcsError::Signature);
    }
    Ok(())
}

/// Inside a verified Response: does the assertion carry its own signature, referencing itself?
/// (Every signature in the document has verified by then.)
fn assertion_signature_covers_itself(a: &Assertion) -> bool {
    let own = format!("#{}", a.id);
    a.signature.as_ref().is_some_and(|sig| {
        sig.signed_info
            .reference
            .iter()
            .any(|r| r.uri.as_deref() == Some(own.as_str()))
    })
}

fn check_envelope(
    response: &Response,
    conn: &SamlConnection,
    idp: &IdpMetadata,
) -> Result<(), AcsError> {
    if let Some(issuer) = response.issuer.as_ref().and_then(|i| i.value.as_deref()) {
        if issuer != idp.entity_id {
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

/// Checks issuer, audience, time window and the bearer confirmation; returns the confirmation's
/// InResponseTo (None when the response is unsolicited).
fn check_assertion(
    a: &Assertion,
    conn: &SamlConnection,
    idp: &IdpMetadata,
    now: DateTime<Utc>,
) -> Result<Option<String>, AcsError> {
    let skew = chrono::Duration::from_std(conn.clock_skew).unwrap_or_default();
    if a.issuer.value.as_deref() != Some(idp.entity_id.as_str()) {
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
            Ok(data.in_response_to.clone().filter(|id| !id.is_empty()))
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

/// Is there a pending AuthnRequest with this id? (For telling a missing cookie from a response
/// that answers nothing; does not consume it.)
pub async fn request_known(store: &dyn KvStore, request_id: &str) -> Result<bool, AcsError> {
    Ok(
        store::get_json::<SentRequest>(store, Namespace::SamlRequest, request_id)
            .await?
            .is_some(),
    )
}

/// How the response reached the ACS.
#[derive(Debug, Clone, Copy)]
pub enum Solicitation<'a> {
    /// Posted with the RelayState (login id) whose browser-binding cookie this browser holds.
    Login(&'a str),
    /// No login of this browser; accepted only when the connection allows IdP-initiated login.
    Unsolicited { allowed: bool },
}

/// Completes the checks that need the store. The assertion id must be new: it is kept until
/// the assertion expires (across instances when the store is shared), so a response posted
/// again is "already used". A solicited response must answer a request this bridge sent for
/// this connection and this login (taken, so single use); a response that fails that check is
/// not burnt, so a stolen copy posted elsewhere first does not lock out its owner. An
/// unsolicited response must carry no InResponseTo at all.
pub async fn accept(
    store: &dyn KvStore,
    verified: &VerifiedAssertion,
    connection_id: &str,
    how: Solicitation<'_>,
    now: DateTime<Utc>,
) -> Result<(), AcsError> {
    let id = &verified.assertion_id;
    let request_id = match (how, verified.in_response_to.as_deref()) {
        (Solicitation::Login(login_id), Some(request_id)) => {
            let sent: Option<SentRequest> =
                store::get_json(store, Namespace::SamlRequest, request_id).await?;
            let Some(sent) = sent else {
                let used = store.get(Namespace::AssertionReplay, id).await?.is_some();
                return Err(if used {
                    AcsError::Replay
                } else {
                    AcsError::InResponseTo
                });
            };
            if sent.connection_id != connection_id || sent.login_id != login_id {
                return Err(AcsError::InResponseTo);
            }
            Some(request_id)
        }
        // A login started here must be answered by a response to its request.
        (Solicitation::Login(_), None) => return Err(AcsError::InResponseTo),
        (Solicitation::Unsolicited { allowed: true }, None) => None,
        (Solicitation::Unsolicited { allowed: false }, None) => return Err(AcsError::Unsolicited),
        // Claims to answer a request, but not from the browser that sent it.
        (Solicitation::Unsolicited { .. }, Some(_)) => {
            let used = store.get(Namespace::AssertionReplay, id).await?.is_some();
            return Err(if used {
                AcsError::Replay
            } else {
                AcsError::InResponseTo
            });
        }
    };
    let ttl = (verified.expires_at - now)
        .to_std()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    let fresh = store
        .put_if_absent(Namespace::AssertionReplay, id, Vec::new(), ttl)
        .await?;
    if !fresh {
        return Err(AcsError::Replay);
    }
    // Taken atomically: two concurrent posts of one response cannot both pass.
    if let Some(request_id) = request_id {
        store
            .take(Namespace::SamlRequest, request_id)
            .await?
            .ok_or(AcsError::InResponseTo)?;
    }
    Ok(())
}
