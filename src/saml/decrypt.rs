//! Decrypting an `EncryptedAssertion` with the SP key, then handing the plaintext assertion
//! back inside its Response, so `acs` verifies it with every check a plain one gets.
//!
//! XML Encryption 1.0/1.1 as IdPs use it for SAML: an `xenc:EncryptedData` (Type Element) whose
//! content key travels in an `xenc:EncryptedKey`, inside its `ds:KeyInfo` or beside it in the
//! `EncryptedAssertion`. Key transport: RSA-OAEP (`rsa-oaep-mgf1p`, MGF1-SHA1, digest SHA-1
//! unless a DigestMethod says otherwise; `xmlenc11#rsa-oaep` with its declared digest and MGF).
//! RSA PKCS#1 v1.5 (`rsa-1_5`) is always refused: its padding oracle (Bleichenbacher) lets an
//! attacker who can post responses decrypt captured ones. Content: AES-128/256-CBC (IV prefix,
//! ISO 10126 padding) and AES-128/256-GCM (12-byte IV prefix, 16-byte tag suffix).
//!
//! Every failure to decrypt, whatever its cause (key unwrap, padding, tag, plaintext that is not
//! an element), is the same error: distinct errors would be an oracle for chosen-ciphertext
//! attacks on CBC (Jager and Somorovsky, 2011). Nothing decrypted is ever logged.

use base64::Engine;
use libxml::tree::Node;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher, Crypter, Mode};

use super::xml::{refuse_foreign_encoding, NS_ASSERTION, NS_DSIG};

const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const NS_XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";

const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";

/// Encrypted keys looked at per assertion (one per recipient); more is not a real response.
const MAX_ENCRYPTED_KEYS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// Algorithms we refuse or do not know: safe to tell apart, they are read in clear.
    #[error("unsupported or refused encryption algorithm")]
    Algorithm,
    /// Anything else: structure, key, padding, tag, plaintext.
    #[error("cannot decrypt")]
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Cbc(usize),
    Gcm(usize),
}

impl Content {
    fn from_uri(uri: &str) -> Option<Self> {
        Some(match uri {
            AES128_CBC => Content::Cbc(16),
            AES256_CBC => Content::Cbc(32),
            AES128_GCM => Content::Gcm(16),
            AES256_GCM => Content::Gcm(32),
            _ => return None,
        })
    }

    fn key_len(self) -> usize {
        match self {
            Content::Cbc(n) | Content::Gcm(n) => n,
        }
    }
}

/// Replaces the Response's one `EncryptedAssertion` (a direct child of the root) by the
/// decrypted assertion, and returns the whole document as text. `response` is either the raw
/// document (no outer signature) or the canonical bytes its verified signature covers. `keys`:
/// the current SP key first, then retired ones.
pub fn splice_decrypted(response: &str, keys: &[&PKey<Private>]) -> Result<String, DecryptError> {
    let doc = parse_strict(response)?;
    let root = doc.get_root_element().ok_or(DecryptError::Failed)?;
    let mut encrypted = children(&root, "EncryptedAssertion", NS_ASSERTION);
    if encrypted.len() != 1 {
        return Err(DecryptError::Failed);
    }
    let mut encrypted_assertion = encrypted.remove(0);
    let plaintext = decrypt_assertion(&encrypted_assertion, keys)?;
    let plaintext = element_text(&plaintext)?;

    // Splice through a placeholder that nothing in the document can contain: the plaintext
    // then sits where the EncryptedAssertion was, inside the Response's namespace context.
    let marker = format!("ssobridge-splice-{}", crate::secret::random_token(12));
    let marker = marker.replace(['-', '_'], "x");
    let mut placeholder = Node::new(&marker, None, &doc).map_err(|_| DecryptError::Failed)?;
    encrypted_assertion
        .add_prev_sibling(&mut placeholder)
        .map_err(|_| DecryptError::Failed)?;
    encrypted_assertion.unlink();
    let serialized = doc.node_to_string(&root);
    let tag = format!("<{marker}/>");
    if serialized.matches(&tag).count() != 1 {
        return Err(DecryptError::Failed);
    }
    let spliced = serialized.replacen(&tag, plaintext, 1);
    // The plaintext must be well-formed in place. libxml's default mode would repair it; a
    // repaired plaintext is a failure like any other here.
    parse_strict(&spliced)?;
    Ok(spliced)
}

/// Parses without libxml's error recovery (and without network access, without printing).
fn parse_strict(text: &str) -> Result<libxml::tree::Document, DecryptError> {
    let options = libxml::parser::ParserOptions {
        recover: false,
        no_net: true,
        ..Default::default()
    };
    libxml::parser::Parser::default()
        .parse_string_with_options(text, options)
        .map_err(|_| DecryptError::Failed)
}

/// The plaintext as one element's text: UTF-8, an optional UTF-8 XML declaration stripped,
/// starting with a start tag. Its well-formedness is judged when the spliced document parses.
fn element_text(plaintext: &[u8]) -> Result<&str, DecryptError> {
    refuse_foreign_encoding(plaintext).map_err(|_| DecryptError::Failed)?;
    let text = std::str::from_utf8(plaintext).map_err(|_| DecryptError::Failed)?;
    let text = text.trim_start_matches('\u{feff}').trim();
    let text = match text.strip_prefix("<?xml") {
        Some(rest) => rest
            .find("?>")
            .map(|end| rest[end + 2..].trim_start())
            .ok_or(DecryptError::Failed)?,
        None => text,
    };
    if !text.starts_with('<') || text.starts_with("<?") || text.starts_with("<!") {
        return Err(DecryptError::Failed);
    }
    Ok(text)
}

fn ns_href(n: &Node) -> Option<String> {
    n.get_namespace().map(|ns| ns.get_href())
}

fn children(parent: &Node, local: &str, ns: &str) -> Vec<Node> {
    parent
        .get_child_elements()
        .into_iter()
        .filter(|c| c.get_name() == local && ns_href(c).as_deref() == Some(ns))
        .collect()
}

fn child(parent: &Node, local: &str, ns: &str) -> Option<Node> {
    let mut found = children(parent, local, ns);
    (found.len() == 1).then(|| found.remove(0))
}

fn algorithm(parent: &Node, local: &str, ns: &str) -> Option<String> {
    child(parent, local, ns).and_then(|m| m.get_attribute("Algorithm"))
}

fn b64_decode(text: &str) -> Result<Vec<u8>, DecryptError> {
    let compact: String = text.split_ascii_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| DecryptError::Failed)
}

/// CipherData/CipherValue, base64-decoded (CipherReference would fetch a URL: never).
fn cipher_value(parent: &Node) -> Result<Vec<u8>, DecryptError> {
    let data = child(parent, "CipherData", NS_XENC).ok_or(DecryptError::Failed)?;
    let value = child(&data, "CipherValue", NS_XENC).ok_or(DecryptError::Failed)?;
    b64_decode(&value.get_content())
}

fn decrypt_assertion(ea: &Node, keys: &[&PKey<Private>]) -> Result<Vec<u8>, DecryptError> {
    let data = child(ea, "EncryptedData", NS_XENC).ok_or(DecryptError::Failed)?;
    if data
        .get_attribute("Type")
        .is_some_and(|t| t != TYPE_ELEMENT)
    {
        return Err(DecryptError::Failed);
    }
    let content = algorithm(&data, "EncryptionMethod", NS_XENC)
        .as_deref()
        .and_then(Content::from_uri)
        .ok_or(DecryptError::Algorithm)?;
    let ciphertext = cipher_value(&data)?;

    // Keys for this data: inside its KeyInfo, or beside it (Okta, Shibboleth with several
    // recipients). RetrievalMethod/KeyName references are not followed: with a single SP key
    // every candidate is simply tried.
    let mut candidates = Vec::new();
    if let Some(info) = child(&data, "KeyInfo", NS_DSIG) {
        candidates.extend(children(&info, "EncryptedKey", NS_XENC));
    }
    candidates.extend(children(ea, "EncryptedKey", NS_XENC));
    if candidates.is_empty() || candidates.len() > MAX_ENCRYPTED_KEYS {
        return Err(DecryptError::Failed);
    }
    let mut outcome = Err(DecryptError::Failed);
    for encrypted_key in &candidates {
        for key in keys {
            match unwrap_key(encrypted_key, key) {
                Ok(cek) if cek.len() == content.key_len() => {
                    return decrypt_content(content, &cek, &ciphertext);
                }
                Ok(_) => {}
                Err(DecryptError::Algorithm) => outcome = Err(DecryptError::Algorithm),
                Err(DecryptError::Failed) => {}
            }
        }
    }
    outcome
}

fn digest_md(uri: Option<&str>) -> Result<&'static MdRef, DecryptError> {
    Ok(match uri {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Md::sha1(),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Md::sha256(),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha384") => Md::sha384(),
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => Md::sha512(),
        Some(_) => return Err(DecryptError::Algorithm),
    })
}

fn mgf_md(uri: Option<&str>) -> Result<&'static MdRef, DecryptError> {
    Ok(match uri {
        None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1") => Md::sha1(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha224") => Md::sha224(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => Md::sha256(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha384") => Md::sha384(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha512") => Md::sha512(),
        Some(_) => return Err(DecryptError::Algorithm),
    })
}

/// RSA-OAEP key transport with the parameters the EncryptedKey declares.
fn unwrap_key(encrypted_key: &Node, key: &PKey<Private>) -> Result<Vec<u8>, DecryptError> {
    let method = child(encrypted_key, "EncryptionMethod", NS_XENC).ok_or(DecryptError::Failed)?;
    let (digest, mgf) = match method.get_attribute("Algorithm").as_deref() {
        Some(RSA_OAEP_MGF1P) => (
            // The 2001 URI fixes MGF1 to SHA-1; only the OAEP digest may be declared.
            digest_md(algorithm(&method, "DigestMethod", NS_DSIG).as_deref())?,
            Md::sha1(),
        ),
        Some(RSA_OAEP) => (
            digest_md(algorithm(&method, "DigestMethod", NS_DSIG).as_deref())?,
            mgf_md(algorithm(&method, "MGF", NS_XENC11).as_deref())?,
        ),
        // rsa-1_5 included: never accepted (see the module header).
        _ => return Err(DecryptError::Algorithm),
    };
    let label = match child(&method, "OAEPparams", NS_XENC) {
        Some(p) => Some(b64_decode(&p.get_content())?),
        None => None,
    };
    let wrapped = cipher_value(encrypted_key)?;
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.decrypt_init()?;
        ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
        ctx.set_rsa_oaep_md(digest)?;
        ctx.set_rsa_mgf1_md(mgf)?;
        if let Some(label) = &label {
            ctx.set_rsa_oaep_label(label)?;
        }
        let mut out = Vec::new();
        ctx.decrypt_to_vec(&wrapped, &mut out)?;
        Ok(out)
    };
    run().map_err(|_| DecryptError::Failed)
}

fn decrypt_content(content: Content, cek: &[u8], data: &[u8]) -> Result<Vec<u8>, DecryptError> {
    match content {
        Content::Cbc(n) => {
            let cipher = if n == 16 {
                Cipher::aes_128_cbc()
            } else {
                Cipher::aes_256_cbc()
            };
            if data.len() < 32 || !data.len().is_multiple_of(16) {
                return Err(DecryptError::Failed);
            }
            let (iv, body) = data.split_at(16);
            // ISO 10126 padding: random bytes, then their count. OpenSSL's PKCS#7 check would
            // refuse the random bytes, so padding is removed here, trusting only the last byte.
            let mut c = Crypter::new(cipher, Mode::Decrypt, cek, Some(iv))
                .map_err(|_| DecryptError::Failed)?;
            c.pad(false);
            let mut out = vec![0; body.len() + 16];
            let mut len = c.update(body, &mut out).map_err(|_| DecryptError::Failed)?;
            len += c
                .finalize(&mut out[len..])
                .map_err(|_| DecryptError::Failed)?;
            out.truncate(len);
            let pad = usize::from(*out.last().ok_or(DecryptError::Failed)?);
            if pad == 0 || pad > 16 || pad > out.len() {
                return Err(DecryptError::Failed);
            }
            out.truncate(out.len() - pad);
            Ok(out)
        }
        Content::Gcm(n) => {
            let cipher = if n == 16 {
                Cipher::aes_128_gcm()
            } else {
                Cipher::aes_256_gcm()
            };
            if data.len() < 12 + 16 {
                return Err(DecryptError::Failed);
            }
            let (iv, rest) = data.split_at(12);
            let (body, tag) = rest.split_at(rest.len() - 16);
            symm::decrypt_aead(cipher, cek, Some(iv), &[], body, tag)
                .map_err(|_| DecryptError::Failed)
        }
    }
}
