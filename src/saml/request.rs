//! The AuthnRequest step: build the request for one connection and the HTTP-Redirect binding URL
//! (raw DEFLATE, base64, URL-encoded; RelayState carries only the opaque login id).

use std::io::Write;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::xml::escape;
use crate::config::SamlConnection;

/// A request ready to send, and the id its response must answer.
#[derive(Debug, Clone)]
pub struct AuthnRequest {
    pub id: String,
    pub redirect_url: String,
}

/// Builds an AuthnRequest for `connection` and its redirect URL carrying `relay_state`.
pub fn build(connection: &SamlConnection, relay_state: &str, now: DateTime<Utc>) -> AuthnRequest {
    // Ids must be xsd:ID (NCName): start with a letter or underscore.
    let id = format!("_{}", hex_id());
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy AllowCreate="true"/></samlp:AuthnRequest>"#,
        instant = now.to_rfc3339_opts(SecondsFormat::Secs, true),
        dest = escape(&connection.idp.sso_redirect_url),
        acs = escape(&connection.acs_url),
        issuer = escape(&connection.sp_entity_id),
    );
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(xml.as_bytes());
    let deflated = encoder.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);

    let mut url = url::Url::parse(&connection.idp.sso_redirect_url)
        .unwrap_or_else(|_| url::Url::parse("about:invalid").expect("static URL"));
    url.query_pairs_mut()
        .append_pair("SAMLRequest", &encoded)
        .append_pair("RelayState", relay_state);
    AuthnRequest {
        id,
        redirect_url: url.into(),
    }
}

fn hex_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
