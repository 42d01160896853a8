//! The AuthnRequest step: build the request for one connection, for the HTTP-Redirect binding
//! (raw DEFLATE, base64, URL-encoded, finished stream) or the HTTP-POST binding (plain base64,
//! posted by an auto-submitting form that `web` renders). RelayState carries only the opaque
//! login id (32 bytes, within the 80-byte limit of the bindings spec). With
//! `sign_authn_requests`, both bindings carry an RSA-SHA256 signature by the SP key (`signing`).

use std::io::Write;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;

use openssl::pkey::{PKey, Private};

use super::signing::{self, c14n_attr, c14n_text, SignError};
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

/// Why no request could be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the connection has no IdP metadata with a sign-in URL for its binding (yet)")]
    NoMetadata,
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Builds an AuthnRequest for `connection`, delivered with its configured binding and signed
/// when the connection says so.
pub fn build(
    connection: &SamlConnection,
    relay_state: &str,
    now: DateTime<Utc>,
) -> Result<AuthnRequest, BuildError> {
    let idp = connection.idp.current().ok_or(BuildError::NoMetadata)?;
    // Ids must be xsd:ID (NCName): start with a letter or underscore.
    let id = format!("_{}", hex_id());
    let (binding, destination) = match connection.binding {
        RequestBinding::Post => (RequestBinding::Post, idp.sso_post_url.as_deref()),
        RequestBinding::Redirect => (RequestBinding::Redirect, idp.sso_redirect_url.as_deref()),
    };
    let destination = destination.ok_or(BuildError::NoMetadata)?.to_owned();
    let (xml, issuer_end) = authn_request_xml(connection, &id, &destination, now);
    // Config resolution refuses sign_authn_requests without a key.
    let key = connection
        .sp_signing
        .as_ref()
        .filter(|_| connection.sign_authn_requests);
    let delivery = match binding {
        RequestBinding::Redirect => Delivery::Redirect(redirect_url(
            &destination,
            &xml,
            relay_state,
            key.map(|k| k.private_key()),
        )?),
        RequestBinding::Post => {
            let xml = match key {
                Some(k) => {
                    signing::enveloped(&xml, &id, issuer_end, k.private_key(), k.cert_b64())?
                }
                None => xml,
            };
            Delivery::Post {
                url: destination,
                saml_request: base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()),
                relay_state: relay_state.to_owned(),
            }
        }
    };
    Ok(AuthnRequest { id, delivery })
}

/// The request in exclusive-c14n canonical form (sorted attributes, each namespace declared
/// where it is first used, no empty-element tags), so an enveloped signature can digest the
/// bytes as written. Also returns where the Issuer ends: a signature goes right after it.
fn authn_request_xml(
    connection: &SamlConnection,
    id: &str,
    destination: &str,
    now: DateTime<Utc>,
) -> (String, usize) {
    let force = if connection.force_authn {
        r#" ForceAuthn="true""#
    } else {
        ""
    };
    let head = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" AssertionConsumerServiceURL="{acs}" Destination="{dest}"{force} ID="{id}" IssueInstant="{instant}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Version="2.0"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{issuer}</saml:Issuer>"#,
        acs = c14n_attr(&connection.acs_url),
        dest = c14n_attr(destination),
        id = c14n_attr(id),
        instant = now.to_rfc3339_opts(SecondsFormat::Secs, true),
        issuer = c14n_text(&connection.sp_entity_id),
    );
    // Ask for the configured NameID format explicitly (Google honours whatever is asked, so
    // never leave it to chance); without one, the IdP's app setting decides.
    let format = connection
        .name_id_format
        .as_deref()
        .map(|f| format!(r#" Format="{}""#, c14n_attr(f)))
        .unwrap_or_default();
    let xml = format!(
        r#"{head}<samlp:NameIDPolicy AllowCreate="true"{format}></samlp:NameIDPolicy></samlp:AuthnRequest>"#
    );
    (xml, head.len())
}

fn redirect_url(
    destination: &str,
    xml: &str,
    relay_state: &str,
    key: Option<&PKey<Private>>,
) -> Result<String, SignError> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail; `finish` writes the final block, so strict inflaters see
    // a complete stream (field case 018).
    let _ = encoder.write_all(xml.as_bytes());
    let deflated = encoder.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let Ok(mut url) = url::Url::parse(destination) else {
        return Ok("about:invalid".into());
    };
    match key {
        // The signature covers our parameters exactly as they appear in the URL, so the query
        // is written by hand (after any parameters the IdP's own URL carries).
        Some(key) => {
            let ours = signing::redirect_query("SAMLRequest", &encoded, relay_state, key)?;
            let query = match url.query().filter(|q| !q.is_empty()) {
                Some(existing) => format!("{existing}&{ours}"),
                None => ours,
            };
            url.set_query(Some(&query));
        }
        None => {
            url.query_pairs_mut()
                .append_pair("SAMLRequest", &encoded)
                .append_pair("RelayState", relay_state);
        }
    }
    Ok(url.into())
}

fn hex_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
