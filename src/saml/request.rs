//! The AuthnRequest step: build the request for one connection, for the HTTP-Redirect binding
//! (raw DEFLATE, base64, URL-encoded, finished stream) or the HTTP-POST binding (plain base64,
//! posted by an auto-submitting form that `web` renders). RelayState carries only the opaque
//! login id (32 bytes, within the 80-byte limit of the bindings spec).

use std::io::Write;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::xml::escape;
use crate::config::{RequestBinding, SamlConnection};

/// How the browser carries the request to the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Redirect the browser to this URL.
    Redirect(String),
    /// Post `SAMLRequest` and `RelayState` to `url` (an auto-submitting form).
    Post {
        url: String,
        saml_request: String,
        relay_state: String,
    },
}

/// A request ready to send, and the id its response must answer.
#[derive(Debug, Clone)]
pub struct AuthnRequest {
    pub id: String,
    pub delivery: Delivery,
}

/// Builds an AuthnRequest for `connection`, delivered with its configured binding; `None` while
/// the connection has no IdP metadata with a sign-in URL for that binding.
pub fn build(
    connection: &SamlConnection,
    relay_state: &str,
    now: DateTime<Utc>,
) -> Option<AuthnRequest> {
    let idp = connection.idp.current()?;
    // Ids must be xsd:ID (NCName): start with a letter or underscore.
    let id = format!("_{}", hex_id());
    let (binding, destination) = match connection.binding {
        RequestBinding::Post => (RequestBinding::Post, idp.sso_post_url.as_deref()),
        RequestBinding::Redirect => (RequestBinding::Redirect, idp.sso_redirect_url.as_deref()),
    };
    let destination = destination?.to_owned();
    let xml = authn_request_xml(connection, &id, &destination, now);
    let delivery = match binding {
        RequestBinding::Redirect => {
            Delivery::Redirect(redirect_url(&destination, &xml, relay_state))
        }
        RequestBinding::Post => Delivery::Post {
            url: destination,
            saml_request: base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()),
            relay_state: relay_state.to_owned(),
        },
    };
    Some(AuthnRequest { id, delivery })
}

fn authn_request_xml(
    connection: &SamlConnection,
    id: &str,
    destination: &str,
    now: DateTime<Utc>,
) -> String {
    // Ask for the configured NameID format explicitly (Google honours whatever is asked, so
    // never leave it to chance); without one, the IdP's app setting decides.
    let format = connection
        .name_id_format
        .as_deref()
        .map(|f| format!(r#" Format="{}""#, escape(f)))
        .unwrap_or_default();
    let force = if connection.force_authn {
        r#" ForceAuthn="true""#
    } else {
        ""
    };
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{force}><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy{format} AllowCreate="true"/></samlp:AuthnRequest>"#,
        instant = now.to_rfc3339_opts(SecondsFormat::Secs, true),
        dest = escape(destination),
        acs = escape(&connection.acs_url),
        issuer = escape(&connection.sp_entity_id),
    )
}

fn redirect_url(destination: &str, xml: &str, relay_state: &str) -> String {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail; `finish` writes the final block, so strict inflaters see
    // a complete stream (field case 018).
    let _ = encoder.write_all(xml.as_bytes());
    let deflated = encoder.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let Ok(mut url) = url::Url::parse(destination) else {
        return "about:invalid".into();
    };
    url.query_pairs_mut()
        .append_pair("SAMLRequest", &encoded)
        .append_pair("RelayState", relay_state);
    url.into()
}

fn hex_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
