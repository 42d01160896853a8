//! A test IdP: an RSA key and self-signed certificate made per test, its metadata, and SAML
//! Responses built and signed (with xmlsec, through samael) at test time. Tests mutate one
//! field of a response the same test first shows is accepted.

use std::io::Read;

use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{CryptoProvider, XmlSec};

pub struct TestIdp {
    pub entity_id: String,
    pub sso_url: String,
    key: PKey<Private>,
    pub cert: X509,
}

impl TestIdp {
    pub fn new(entity_id: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "test-idp").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Self {
            entity_id: entity_id.to_owned(),
            sso_url: format!("{entity_id}/sso"),
            key,
            cert: b.build(),
        }
    }

    pub fn cert_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.cert.to_der().unwrap())
    }

    /// IdP metadata; `key_use` is the KeyDescriptor's use attribute (or none).
    pub fn metadata_with_use(&self, key_use: Option<&str>) -> String {
        let use_attr = key_use.map(|u| format!(" use=\"{u}\"")).unwrap_or_default();
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{eid}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor{use_attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
            eid = self.entity_id,
            cert = self.cert_b64(),
            sso = self.sso_url,
        )
    }

    pub fn metadata(&self) -> String {
        self.metadata_with_use(Some("signing"))
    }

    fn key_der(&self) -> Vec<u8> {
        self.key.rsa().unwrap().private_key_to_der().unwrap()
    }

    /// Signs the root element of `xml` (which must hold a Signature template referencing the
    /// root's ID) and returns the document without its XML declaration.
    pub fn sign(&self, xml: &str) -> String {
        let signed = XmlSec::sign_xml(xml, &self.key_der()).expect("xmlsec signing");
        strip_declaration(&signed)
    }

    /// A complete response per `spec`, signed as the spec says.
    pub fn response(&self, spec: &ResponseSpec) -> String {
        let mut assertion = spec.assertion_xml(self);
        if spec.sign_assertion {
            assertion = self.sign(&assertion);
        }
        if let Some(enc) = &spec.encrypt {
            assertion = super::saml_enc::encrypt_assertion(&assertion, enc);
        }
        let response = spec.response_xml(self, &assertion);
        if spec.sign_response {
            self.sign(&response)
        } else {
            response
        }
    }

    /// Base64 form value of `response(spec)`.
    pub fn response_b64(&self, spec: &ResponseSpec) -> String {
        b64(&self.response(spec))
    }
}

pub fn b64(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

fn strip_declaration(xml: &str) -> String {
    let t = xml.trim_start();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return t[end + 2..].trim_start().to_owned();
        }
    }
    t.to_owned()
}

/// Every field a test may change. Defaults describe a valid response for `acs`/`audience`.
#[derive(Clone)]
pub struct ResponseSpec {
    pub response_id: String,
    pub assertion_id: String,
    pub in_response_to: String,
    pub destination: Option<String>,
    pub recipient: String,
    pub audience: String,
    pub issuer: Option<String>,
    pub issue_instant: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub not_on_or_after: DateTime<Utc>,
    pub confirmation_not_on_or_after: DateTime<Utc>,
    pub name_id: String,
    pub name_id_format: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub status: String,
    /// Adds `<saml:OneTimeUse/>` to the Conditions.
    pub one_time_use: bool,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub signature_alg: String,
    pub digest_alg: String,
    /// Replaces the generated AttributeStatement(s) verbatim.
    pub attribute_statements: Option<String>,
    /// Replaces Conditions' NotBefore / NotOnOrAfter and the assertion's IssueInstant with
    /// literal strings (fractional seconds, offsets).
    pub raw_not_before: Option<String>,
    pub raw_not_on_or_after: Option<String>,
    pub raw_issue_instant: Option<String>,
    /// Encrypt the (signed) assertion to the SP's certificate.
    pub encrypt: Option<super::saml_enc::Encryption>,
}

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

impl ResponseSpec {
    pub fn new(acs: &str, audience: &str, in_response_to: &str, now: DateTime<Utc>) -> Self {
        Self {
            response_id: format!(
                "_r{}",
                sso_bridge::secret::random_token(12).replace(['-', '_'], "x")
            ),
            assertion_id: format!(
                "_a{}",
                sso_bridge::secret::random_token(12).replace(['-', '_'], "x")
            ),
            in_response_to: in_response_to.to_owned(),
            destination: Some(acs.to_owned()),
            recipient: acs.to_owned(),
            audience: audience.to_owned(),
            issuer: None,
            issue_instant: now,
            not_before: now - Duration::seconds(30),
            not_on_or_after: now + Duration::seconds(300),
            confirmation_not_on_or_after: now + Duration::seconds(300),
            name_id: "00u-alice-0001".into(),
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into(),
            email: Some("alice@acme.test".into()),
            name: Some("Alice Anderson".into()),
            groups: vec!["lf-admins".into(), "ml-team".into()],
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".into(),
            one_time_use: false,
            sign_response: false,
            sign_assertion: true,
            signature_alg: RSA_SHA256.into(),
            digest_alg: SHA256.into(),
            attribute_statements: None,
            raw_not_before: None,
            raw_not_on_or_after: None,
            raw_issue_instant: None,
            encrypt: None,
        }
    }

    /// An unsolicited (IdP-initiated) response: no InResponseTo anywhere.
    pub fn unsolicited(mut self) -> Self {
        self.in_response_to.clear();
        self
    }

    fn irt_attr(&self) -> String {
        if self.in_response_to.is_empty() {
            String::new()
        } else {
            format!(r#" InResponseTo="{}""#, esc(&self.in_response_to))
        }
    }

    pub fn signature_template(&self, idp: &TestIdp, id: &str) -> String {
        format!(
            r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{alg}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##,
            alg = self.signature_alg,
            digest = self.digest_alg,
            cert = idp.cert_b64(),
        )
    }

    fn issuer<'a>(&'a self, idp: &'a TestIdp) -> &'a str {
        self.issuer.as_deref().unwrap_or(&idp.entity_id)
    }

    pub fn assertion_xml(&self, idp: &TestIdp) -> String {
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let sig = if self.sign_assertion {
            self.signature_template(idp, &self.assertion_id)
        } else {
            String::new()
        };
        let mut attrs = String::new();
        let attr = |name: &str, values: &[String]| {
            let vals: String = values
                .iter()
                .map(|v| {
                    format!(
                        r#"<saml:AttributeValue xsi:type="xs:string">{}</saml:AttributeValue>"#,
                        esc(v)
                    )
                })
                .collect();
            format!(
                r#"<saml:Attribute Name="{name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">{vals}</saml:Attribute>"#
            )
        };
        if let Some(e) = &self.email {
            attrs.push_str(&attr("email", std::slice::from_ref(e)));
        }
        if let Some(n) = &self.name {
            attrs.push_str(&attr("displayName", std::slice::from_ref(n)));
        }
        if !self.groups.is_empty() {
            attrs.push_str(&attr("groups", &self.groups));
        }
        let statements = self.attribute_statements.clone().unwrap_or_else(|| {
            format!("<saml:AttributeStatement>{attrs}</saml:AttributeStatement>")
        });
        format!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="{id}" Version="2.0" IssueInstant="{ii}"><saml:Issuer>{issuer}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="{nif}">{nameid}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{cnoa}" Recipient="{rcpt}"{irt}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{noa}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction>{otu}</saml:Conditions><saml:AuthnStatement AuthnInstant="{ii}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>{statements}</saml:Assertion>"#,
            id = self.assertion_id,
            ii = self
                .raw_issue_instant
                .clone()
                .unwrap_or_else(|| ts(self.issue_instant)),
            issuer = esc(self.issuer(idp)),
            nif = self.name_id_format,
            nameid = esc(&self.name_id),
            cnoa = ts(self.confirmation_not_on_or_after),
            rcpt = esc(&self.recipient),
            irt = self.irt_attr(),
            nb = self
                .raw_not_before
                .clone()
                .unwrap_or_else(|| ts(self.not_before)),
            noa = self
                .raw_not_on_or_after
                .clone()
                .unwrap_or_else(|| ts(self.not_on_or_after)),
            aud = esc(&self.audience),
            otu = if self.one_time_use {
                "<saml:OneTimeUse/>"
            } else {
                ""
            },
        )
    }

    pub fn response_xml(&self, idp: &TestIdp, assertion: &str) -> String {
        let sig = if self.sign_response {
            self.signature_template(idp, &self.response_id)
        } else {
            String::new()
        };
        let dest = self
            .destination
            .as_ref()
            .map(|d| format!(r#" Destination="{}""#, esc(d)))
            .unwrap_or_default();
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{ii}"{dest}{irt}><saml:Issuer>{issuer}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertion}</samlp:Response>"#,
            id = self.response_id,
            ii = self
                .issue_instant
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            irt = self.irt_attr(),
            issuer = esc(self.issuer(idp)),
            status = self.status,
        )
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decodes an HTTP-Redirect binding SAMLRequest (base64 of raw DEFLATE) to XML.
pub fn inflate_request(saml_request: &str) -> String {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(saml_request)
        .unwrap();
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// The ID attribute of an AuthnRequest.
pub fn request_id(authn_request_xml: &str) -> String {
    let start = authn_request_xml.find(" ID=\"").expect("ID attribute") + 5;
    let end = authn_request_xml[start..].find('"').unwrap() + start;
    authn_request_xml[start..end].to_owned()
}
