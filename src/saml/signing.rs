//! Signing what the SP sends (AuthnRequests) with the SP key, RSA-SHA256.
//!
//! HTTP-Redirect binding (SAML bindings §3.4.4.1): the signature covers the exact octets
//! `SAMLRequest=…&RelayState=…&SigAlg=…` as they appear in the URL, and travels as a fourth
//! query parameter. HTTP-POST binding: an enveloped XML signature inside the request. We write
//! the request directly in its exclusive-c14n canonical form, so the digest is a hash of the
//! bytes we wrote: no XML library, no key reloaded per request, and nothing to canonicalise.

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use sha2::{Digest, Sha256};

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing with the SP key failed")]
pub struct SignError;

fn rsa_sha256(key: &PKey<Private>, data: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(|_| SignError)?;
    signer.update(data).map_err(|_| SignError)?;
    signer.sign_to_vec().map_err(|_| SignError)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The query string (without `?`) of a signed HTTP-Redirect message: `param` is `SAMLRequest`,
/// `value` the deflated, base64 message. An empty RelayState is left out of both the URL and
/// the signed octets, as the bindings spec says.
pub fn redirect_query(
    param: &str,
    value: &str,
    relay_state: &str,
    key: &PKey<Private>,
) -> Result<String, SignError> {
    let mut signed = format!("{param}={}", url_encode(value));
    if !relay_state.is_empty() {
        signed.push_str("&RelayState=");
        signed.push_str(&url_encode(relay_state));
    }
    signed.push_str("&SigAlg=");
    signed.push_str(&url_encode(RSA_SHA256));
    let signature = rsa_sha256(key, signed.as_bytes())?;
    Ok(format!(
        "{signed}&Signature={}",
        url_encode(&b64(&signature))
    ))
}

/// Escapes an attribute value the way canonical XML writes it (so the document we emit is
/// already canonical): `&`, `<`, `"` and the three whitespace characters a parser would
/// otherwise normalise.
pub fn c14n_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text content the way canonical XML writes it.
pub fn c14n_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Inserts an enveloped signature into `canonical`, a document that is already in exclusive
/// canonical form and whose root carries `ID="{id}"`, at byte offset `at` (after the Issuer,
/// where the SAML schema puts it). `cert_b64` is published in KeyInfo for the IdP's
/// convenience; IdPs must verify against the certificate in our metadata.
pub fn enveloped(
    canonical: &str,
    id: &str,
    at: usize,
    key: &PKey<Private>,
    cert_b64: &str,
) -> Result<String, SignError> {
    if at > canonical.len() || !canonical.is_char_boundary(at) {
        return Err(SignError);
    }
    // The enveloped-signature transform removes the Signature again before digesting, and the
    // rest is canonical already: the digest is over exactly these bytes.
    let digest = b64(&Sha256::digest(canonical.as_bytes()));
    let signed_info_children = format!(
        r##"<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm="{RSA_SHA256}"></ds:SignatureMethod><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"></ds:Transform><ds:Transform Algorithm="{EXC_C14N}"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="{SHA256_URI}"></ds:DigestMethod><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference>"##,
        id = c14n_attr(id),
    );
    // Canonicalised on its own, SignedInfo declares the ds namespace it inherits in place.
    let signed_info_c14n =
        format!(r#"<ds:SignedInfo xmlns:ds="{NS_DSIG}">{signed_info_children}</ds:SignedInfo>"#);
    let value = b64(&rsa_sha256(key, signed_info_c14n.as_bytes())?);
    let signature = format!(
        r#"<ds:Signature xmlns:ds="{NS_DSIG}"><ds:SignedInfo>{signed_info_children}</ds:SignedInfo><ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
    );
    let mut out = String::with_capacity(canonical.len() + signature.len());
    out.push_str(&canonical[..at]);
    out.push_str(&signature);
    out.push_str(&canonical[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_escapes_differ_from_plain_xml_escapes() {
        assert_eq!(c14n_attr("a'b>c\"d&\t"), "a'b>c&quot;d&amp;&#x9;");
        assert_eq!(c14n_text("a'b>c\"d&"), "a'b&gt;c\"d&amp;");
    }

    #[test]
    fn redirect_query_signs_the_exact_octets() {
        use openssl::rsa::Rsa;
        use openssl::sign::Verifier;
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let q = redirect_query("SAMLRequest", "a+b/c=", "login 1", &key).unwrap();
        let (signed, sig) = q.split_once("&Signature=").unwrap();
        assert_eq!(
            signed,
            "SAMLRequest=a%2Bb%2Fc%3D&RelayState=login+1&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"
        );
        let sig: String = form_urlencoded::parse(format!("s={sig}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        v.update(signed.as_bytes()).unwrap();
        assert!(v.verify(&sig).unwrap());
        // No RelayState: left out of the signed octets too.
        let q = redirect_query("SAMLRequest", "x", "", &key).unwrap();
        assert!(q.starts_with("SAMLRequest=x&SigAlg="));
    }
}
