//! The ACS step: from the posted `SAMLResponse` to a verified assertion.
//!
//! `verify` is pure and synchronous (CPU-bound XML work; callers run it on the blocking pool): it
//! checks the signature against the configured IdP certificates only, then reads every claim from
//! the exact bytes the signature covers (xmlsec's pre-digest output), and makes every time check
//! itself against the `now` it is given. samael's own checks (wall clock, lenient) are never
//! called. Encrypted assertions are decrypted first (`decrypt`) and then face the same checks.
//! `accept` adds what needs the store: single-use InResponseTo and the replay cache.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use samael::crypto::{AllowedSignatureAlgorithm, CryptoProvider, ReduceMode, XmlSec};
use samael::schema::{Assertion, Response};
use serde::{Deserialize, Serialize};

use super::claims;
use super::decrypt::{self, DecryptError};
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
    #[error("the SAML assertion is encrypted, but this connection has no SP decryption key (sp_key_file and sp_cert_file)")]
    Encrypted,
    #[error("this connection requires encrypted SAML assertions, and this one is not encrypted")]
    NotEncrypted,
    #[error("the encrypted SAML assertion could not be decrypted with this connection's SP key")]
    Decryption,
    #[error("the SAML assertion is encrypted with an algorithm the bridge refuses (use RSA-OAEP key transport with AES-GCM or AES-CBC; RSA PKCS#1 v1.5 is never accepted)")]
    EncryptionAlgorithm,
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
            AcsError::NotEncrypted => "not_encrypted",
            AcsError::Decryption => "decryption",
            AcsError::EncryptionAlgorithm => "encryption_algorithm",
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
    let text = precheck(xml)?;
    let shape = inspect(text)?;
    if shape.encrypted_assertions > 0 {
        return verify_encrypted(text, &shape, conn, now);
    }
    if conn.require_encrypted {
        return Err(AcsError::NotEncrypted);
    }
    verify_document(text, &shape, conn, now, false)
}

/// The checks on raw bytes, before any parser sees them.
fn precheck(xml: &[u8]) -> Result<&str, AcsError> {
    xml::quiet_xmlsec_errors();
    refuse_foreign_encoding(xml).map_err(|_| AcsError::Malformed)?;
    refuse_doctype(xml).map_err(|_| AcsError::Doctype)?;
    std::str::from_utf8(xml).map_err(|_| AcsError::Malformed)
}

/// One parse and walk: a Response root, no DTD, no ID twice.
fn inspect(text: &str) -> Result<xml::Shape, AcsError> {
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
    Ok(shape)
}

/// Decrypt, then verify. An outer Response signature is verified first, over the ciphertext,
/// and the ciphertext is then taken from the bytes it covers. The decrypted assertion is put
/// back in place of the EncryptedAssertion and the result goes through every check of a plain
/// response: with the outer signature already spent, the assertion must then carry its own
/// signature unless the Response was signed (the SP's certificate is public, so anyone can
/// encrypt an assertion of their own making).
fn verify_encrypted(
    text: &str,
    shape: &xml::Shape,
    conn: &SamlConnection,
    now: DateTime<Utc>,
) -> Result<VerifiedAssertion, AcsError> {
    // One EncryptedAssertion, in place, and no plain assertion anywhere beside it: a plain one
    // next to an encrypted one is a wrapping attempt whichever of them is signed.
    if shape.encrypted_assertions != 1
        || shape.encrypted_assertions_under_root != 1
        || shape.assertions != 0
    {
        return Err(AcsError::AssertionCount);
    }
    let key = conn.sp_decryption.as_ref().ok_or(AcsError::Encrypted)?;
    let outer_signed = shape.signatures > 0;
    let verified_envelope;
    let envelope = if outer_signed {
        check_algorithms(shape, conn.allow_sha1)?;
        verified_envelope = verify_signatures(text, conn)?;
        if canonical_root(&verified_envelope) != Some(("Response", NS_PROTOCOL)) {
            return Err(AcsError::Signature);
        }
        verified_envelope.as_str()
    } else {
        text
    };
    let keys: Vec<_> = std::iter::once(key.private_key())
        .chain(conn.sp_retired_keys.iter().map(|k| k.private_key()))
        .collect();
    let spliced = decrypt::splice_decrypted(envelope, &keys).map_err(|e| match e {
        DecryptError::Algorithm => AcsError::EncryptionAlgorithm,
        DecryptError::Failed => AcsError::Decryption,
    })?;
    // The plaintext is as hostile as the rest (anyone can encrypt to us): the same raw checks.
    // A plaintext that does not parse in place is a decryption failure, not "malformed": the
    // two must look alike, or they form a well-formedness oracle on CBC.
    let unreadable = |e| match e {
        AcsError::Malformed | AcsError::Doctype => AcsError::Decryption,
        e => e,
    };
    let spliced_text = precheck(spliced.as_bytes()).map_err(unreadable)?;
    let shape = inspect(spliced_text).map_err(unreadable)?;
    if shape.encrypted_assertions != 0 {
        return Err(AcsError::AssertionCount);
    }
    verify_document(spliced_text, &shape, conn, now, outer_signed)
}

/// The IdP metadata in force (URL-sourced metadata may not have loaded yet).
fn idp(conn: &SamlConnection) -> Result<std::sync::Arc<super::metadata::IdpMetadata>, AcsError> {
    conn.idp.current().ok_or(AcsError::MetadataUnavailable)
}

/// Every signature in the document must verify against a configured certificate (a second
/// signature by another key is fatal, field case 003 D); the result is the canonical bytes
/// the signature covers, and every claim is read from those bytes only.
fn verify_signatures(text: &str, conn: &SamlConnection) -> Result<String, AcsError> {
    XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        text,
        &idp(conn)?.signing_certs,
        ReduceMode::PreDigest,
        (!conn.allow_sha1).then_some(ALLOWED_ALGORITHMS),
    )
    .map_err(|_| AcsError::Signature)
}

/// Verifies a response holding one plain assertion. `outer_signed`: this document is the
/// decrypted form of a response whose own signature has verified and covered the ciphertext,
/// so an assertion without a signature of its own is still covered.
fn verify_document(
    text: &str,
    shape: &xml::Shape,
    conn: &SamlConnection,
    now: DateTime<Utc>,
    outer_signed: bool,
) -> Result<VerifiedAssertion, AcsError> {
    // Exactly one assertion in the whole document, directly under the Response: every
    // signature-wrapping placement (XSW1-8) needs a second copy or a moved one.
    if shape.assertions != 1 || shape.assertions_under_root != 1 {
        return Err(AcsError::AssertionCount);
    }
    if shape.signatures == 0 {
        if !outer_signed {
            return Err(AcsError::Unsigned);
        }
        if conn.require_signed == SignedPart::Assertion {
            return Err(AcsError::SignaturePolicy("the assertion"));
        }
        // Built from the verified canonical Response and the plaintext of the ciphertext it
        // covered: every byte here is covered by the outer signature.
        let mut envelope = text.parse::<Response>().map_err(|_| AcsError::Malformed)?;
        let assertion = envelope.assertion.take().ok_or(AcsError::AssertionCount)?;
        return finish(&envelope, &assertion, conn, now);
    }
    check_algorithms(shape, conn.allow_sha1)?;
    let signed = verify_signatures(text, conn)?;

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
            if conn.require_signed == SignedPart::Response && !outer_signed {
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
    finish(&envelope, &assertion, conn, now)
}

/// The checks every verified assertion gets, and the claims read from it.
fn finish(
    envelope: &Response,
    assertion: &Assertion,
    conn: &SamlConnection,
    now: DateTime<Utc>,
) -> Result<VerifiedAssertion, AcsError> {
    check_envelope(envelope, conn)?;
    let confirmed = check_assertion(assertion, conn, now)?;
    let in_response_to = match (envelope.in_response_to.as_deref(), confirmed) {
        (Some(r), Some(c)) if r != c => return Err(AcsError::InResponseTo),
        (_, Some(c)) => Some(c),
        (Some(r), None) if !r.is_empty() => Some(r.to_owned()),
        _ => None,
    };
    let claims = claims::extract(assertion, &conn.attributes)?;

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

fn check_envelope(response: &Response, conn: &SamlConnection) -> Result<(), AcsError> {
    if let Some(issuer) = response.issuer.as_ref().and_then(|i| i.value.as_deref()) {
        if issuer != idp(conn)?.entity_id {
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
    now: DateTime<Utc>,
) -> Result<Option<String>, AcsError> {
    let skew = chrono::Duration::from_std(conn.clock_skew).unwrap_or_default();
    if a.issuer.value.as_deref() != Some(idp(conn)?.entity_id.as_str()) {
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
