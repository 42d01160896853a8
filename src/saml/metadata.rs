//! SAML metadata: the IdP's (read once at load, certificates decoded once) and ours (served at
//! `/saml/{connection}/metadata`).

use samael::crypto::{decode_x509_cert, CertificateDer};
use samael::metadata::EntityDescriptor;

use super::xml::{escape, refuse_doctype};
use crate::config::{SamlConnection, SignedPart};

const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("IdP metadata must not contain a DOCTYPE")]
    Doctype,
    #[error("IdP metadata is not a SAML EntityDescriptor: {0}")]
    Parse(String),
    #[error("IdP metadata is an EntitiesDescriptor (a list of entities); save only your IdP's EntityDescriptor element in the file")]
    Aggregate,
    #[error("IdP metadata has no entityID")]
    NoEntityId,
    #[error("IdP metadata has no IDPSSODescriptor")]
    NoIdpDescriptor,
    #[error("IdP metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding and an http(s) location")]
    NoSso,
    #[error("IdP metadata has no certificate usable for signing (KeyDescriptor use=\"signing\" or without use); without one no response could be verified")]
    NoSigningCertificate,
    #[error("IdP metadata holds a certificate that is not valid base64 DER X.509")]
    BadCertificate,
}

/// What the bridge needs of an IdP, decoded once.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// SingleSignOnService locations per binding; at least one is present.
    pub sso_redirect_url: Option<String>,
    pub sso_post_url: Option<String>,
    /// Every certificate usable for signing (several during a rollover).
    pub signing_certs: Vec<CertificateDer>,
}

impl IdpMetadata {
    pub fn parse(xml: &str) -> Result<Self, MetadataError> {
        refuse_doctype(xml.as_bytes()).map_err(|_| MetadataError::Doctype)?;
        if root_is_entities_descriptor(xml) {
            return Err(MetadataError::Aggregate);
        }
        let entity = xml
            .parse::<EntityDescriptor>()
            .map_err(|e| MetadataError::Parse(e.to_string()))?;
        let entity_id = entity
            .entity_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(MetadataError::NoEntityId)?;
        let descriptors = entity
            .idp_sso_descriptors
            .as_deref()
            .filter(|d| !d.is_empty())
            .ok_or(MetadataError::NoIdpDescriptor)?;
        let sso = |binding: &str| {
            descriptors
                .iter()
                .flat_map(|d| d.single_sign_on_services.iter())
                .find(|e| e.binding == binding)
                .map(|e| e.location.clone())
                .filter(|l| {
                    url::Url::parse(l).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                })
        };
        let sso_redirect_url = sso(BINDING_REDIRECT);
        let sso_post_url = sso(BINDING_POST);
        if sso_redirect_url.is_none() && sso_post_url.is_none() {
            return Err(MetadataError::NoSso);
        }

        let mut signing_certs = Vec::new();
        for descriptor in descriptors {
            for key in &descriptor.key_descriptors {
                let usable = match key.key_use.as_deref() {
                    None | Some("") | Some("signing") => true,
                    Some(_) => false,
                };
                if !usable {
                    continue;
                }
                for encoded in key
                    .key_info
                    .x509_data
                    .iter()
                    .flat_map(|d| d.certificates.iter())
                {
                    let der =
                        decode_x509_cert(encoded).map_err(|_| MetadataError::BadCertificate)?;
                    openssl::x509::X509::from_der(der.der_data())
                        .map_err(|_| MetadataError::BadCertificate)?;
                    if !signing_certs.contains(&der) {
                        signing_certs.push(der);
                    }
                }
            }
        }
        if signing_certs.is_empty() {
            return Err(MetadataError::NoSigningCertificate);
        }
        Ok(Self {
            entity_id,
            sso_redirect_url,
            sso_post_url,
            signing_certs,
        })
    }
}

/// Whether the first element is an `EntitiesDescriptor` (serde would read it as an
/// EntityDescriptor without an entityID and report that instead).
fn root_is_entities_descriptor(xml: &str) -> bool {
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let qname = &rest[..end];
        return qname.rsplit(':').next() == Some("EntitiesDescriptor");
    }
    false
}

/// The IdP metadata a connection uses now. Loaded from a file, or fetched from a URL and
/// replaced on refresh; readers take a cheap snapshot, a failed refresh keeps the last good copy.
#[derive(Debug, Clone, Default)]
pub struct SharedIdp(std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<IdpMetadata>>>>);

impl SharedIdp {
    pub fn new(initial: Option<IdpMetadata>) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(
            initial.map(std::sync::Arc::new),
        )))
    }

    /// The metadata in force, or `None` while a URL-sourced connection has never loaded.
    pub fn current(&self) -> Option<std::sync::Arc<IdpMetadata>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, new: IdpMetadata) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(std::sync::Arc::new(new));
    }
}

/// Content encryption and key transport algorithms `decrypt` handles, strongest first: IdPs
/// that read our metadata (Shibboleth, Keycloak) pick from this list.
const ENCRYPTION_METHODS: &[&str] = &[
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
];

/// Our SP metadata for one connection: the signing and encryption certificates we hold, whether
/// our AuthnRequests are signed, and the NameID format we ask for (none listed when the IdP's
/// app setting decides).
pub fn sp_metadata_xml(conn: &SamlConnection) -> String {
    let key_descriptor = |key_use: &str, cert_b64: &str, methods: &str| {
        format!(
            r#"    <md:KeyDescriptor use="{key_use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{methods}</md:KeyDescriptor>
"#
        )
    };
    let mut keys = String::new();
    if let Some(pair) = &conn.sp_signing {
        keys.push_str(&key_descriptor("signing", pair.cert_b64(), ""));
    }
    if let Some(pair) = &conn.sp_decryption {
        let methods: String = ENCRYPTION_METHODS
            .iter()
            .map(|m| format!(r#"<md:EncryptionMethod Algorithm="{m}"/>"#))
            .collect();
        keys.push_str(&key_descriptor("encryption", pair.cert_b64(), &methods));
    }
    let name_id_format = conn
        .name_id_format
        .as_deref()
        .map(|f| format!("    <md:NameIDFormat>{}</md:NameIDFormat>\n", escape(f)))
        .unwrap_or_default();
    // WantAssertionsSigned tells the IdP to sign the assertion itself: wanted unless this
    // connection insists on (only) the response signature.
    let want_assertions_signed = conn.require_signed != SignedPart::Response;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="{want}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
{keys}{name_id_format}    <md:AssertionConsumerService Binding="{post}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = escape(&conn.sp_entity_id),
        signed = conn.sign_authn_requests,
        want = want_assertions_signed,
        post = BINDING_POST,
        acs = escape(&conn.acs_url),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(key_descriptors: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.com">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
{key_descriptors}
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>"#
        )
    }

    fn key(use_attr: &str, cert_b64: &str) -> String {
        format!(
            r#"<md:KeyDescriptor {use_attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
        )
    }

    fn test_cert_b64() -> String {
        use base64::Engine;
        use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
        let pkey = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "idp").unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&pkey).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&pkey, MessageDigest::sha256()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(b.build().to_der().unwrap())
    }

    #[test]
    fn signing_and_unmarked_certificates_are_usable() {
        let cert = test_cert_b64();
        for use_attr in [r#"use="signing""#, ""] {
            let m = IdpMetadata::parse(&metadata(&key(use_attr, &cert))).unwrap();
            assert_eq!(m.entity_id, "https://idp.example.com");
            assert_eq!(
                m.sso_redirect_url.as_deref(),
                Some("https://idp.example.com/sso")
            );
            assert_eq!(m.signing_certs.len(), 1);
        }
    }

    #[test]
    fn metadata_with_only_an_encryption_certificate_is_refused() {
        let cert = test_cert_b64();
        let ok = metadata(&key(r#"use="signing""#, &cert));
        assert!(IdpMetadata::parse(&ok).is_ok());
        let bad = ok.replace(r#"use="signing""#, r#"use="encryption""#);
        assert_eq!(
            IdpMetadata::parse(&bad).unwrap_err(),
            MetadataError::NoSigningCertificate
        );
        let none = metadata("");
        assert_eq!(
            IdpMetadata::parse(&none).unwrap_err(),
            MetadataError::NoSigningCertificate
        );
    }

    #[test]
    fn garbage_certificate_and_doctype_are_refused() {
        let bad = metadata(&key(r#"use="signing""#, "bm90IGEgY2VydA=="));
        assert_eq!(
            IdpMetadata::parse(&bad).unwrap_err(),
            MetadataError::BadCertificate
        );
        let dtd = format!("<!DOCTYPE x [<!ENTITY a 'b'>]>{}", metadata(""));
        assert_eq!(
            IdpMetadata::parse(&dtd).unwrap_err(),
            MetadataError::Doctype
        );
    }
}
