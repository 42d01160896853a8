//! XML Encryption for the test IdP: turns an assertion (signed or not) into an
//! `EncryptedAssertion` for the SP's certificate, with each key transport and content
//! algorithm the bridge must accept — and the ones it must refuse.

use base64::Engine;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rand::rand_bytes;
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher, Crypter, Mode};
use openssl::x509::X509;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
}

impl Digest {
    fn md(self) -> &'static MdRef {
        match self {
            Digest::Sha1 => Md::sha1(),
            Digest::Sha256 => Md::sha256(),
        }
    }
    fn digest_uri(self) -> &'static str {
        match self {
            Digest::Sha1 => "http://www.w3.org/2000/09/xmldsig#sha1",
            Digest::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
        }
    }
    fn mgf_uri(self) -> &'static str {
        match self {
            Digest::Sha1 => "http://www.w3.org/2009/xmlenc11#mgf1sha1",
            Digest::Sha256 => "http://www.w3.org/2009/xmlenc11#mgf1sha256",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// xmlenc#rsa-oaep-mgf1p; `Some(d)` writes a DigestMethod, `None` leaves the SHA-1 default.
    OaepMgf1p(Option<Digest>),
    /// xmlenc11#rsa-oaep with an explicit DigestMethod and MGF.
    Oaep11 { digest: Digest, mgf: Digest },
    /// xmlenc#rsa-1_5: must be refused.
    Rsa15,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentAlg {
    Aes128Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
}

impl ContentAlg {
    pub const ALL: [ContentAlg; 4] = [
        ContentAlg::Aes128Cbc,
        ContentAlg::Aes256Cbc,
        ContentAlg::Aes128Gcm,
        ContentAlg::Aes256Gcm,
    ];
    fn uri(self) -> &'static str {
        match self {
            ContentAlg::Aes128Cbc => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            ContentAlg::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            ContentAlg::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            ContentAlg::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        }
    }
    fn key_len(self) -> usize {
        match self {
            ContentAlg::Aes128Cbc | ContentAlg::Aes128Gcm => 16,
            _ => 32,
        }
    }
}

/// Where the EncryptedKey goes: in the EncryptedData's KeyInfo, or beside the EncryptedData.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPlacement {
    InKeyInfo,
    Sibling,
}

#[derive(Clone)]
pub struct Encryption {
    /// The SP certificate the content key is encrypted to.
    pub to: X509,
    pub transport: Transport,
    pub content: ContentAlg,
    pub placement: KeyPlacement,
}

impl Encryption {
    /// What SimpleSAMLphp 1.19 does: rsa-oaep-mgf1p (SHA-1) and AES-128-CBC.
    pub fn new(to: &X509) -> Self {
        Self {
            to: to.clone(),
            transport: Transport::OaepMgf1p(None),
            content: ContentAlg::Aes128Cbc,
            placement: KeyPlacement::InKeyInfo,
        }
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    rand_bytes(&mut v).unwrap();
    v
}

/// Encrypts the content octets; the IV prefix (and GCM tag suffix) included.
pub fn encrypt_content(alg: ContentAlg, key: &[u8], plain: &[u8]) -> Vec<u8> {
    match alg {
        ContentAlg::Aes128Gcm | ContentAlg::Aes256Gcm => {
            let cipher = if alg == ContentAlg::Aes128Gcm {
                Cipher::aes_128_gcm()
            } else {
                Cipher::aes_256_gcm()
            };
            let iv = random(12);
            let mut tag = [0u8; 16];
            let ct = symm::encrypt_aead(cipher, key, Some(&iv), &[], plain, &mut tag).unwrap();
            [iv, ct, tag.to_vec()].concat()
        }
        ContentAlg::Aes128Cbc | ContentAlg::Aes256Cbc => {
            let cipher = if alg == ContentAlg::Aes128Cbc {
                Cipher::aes_128_cbc()
            } else {
                Cipher::aes_256_cbc()
            };
            let iv = random(16);
            // ISO 10126: random filler, then the count (never PKCS#7's repeated counts).
            let pad = 16 - plain.len() % 16;
            let mut padded = plain.to_vec();
            padded.extend(random(pad - 1));
            padded.push(pad as u8);
            let mut c = Crypter::new(cipher, Mode::Encrypt, key, Some(&iv)).unwrap();
            c.pad(false);
            let mut out = vec![0; padded.len() + 16];
            let mut n = c.update(&padded, &mut out).unwrap();
            n += c.finalize(&mut out[n..]).unwrap();
            out.truncate(n);
            [iv, out].concat()
        }
    }
}

fn wrap_key(transport: Transport, to: &PKey<Public>, cek: &[u8]) -> Vec<u8> {
    let mut ctx = PkeyCtx::new(to).unwrap();
    ctx.encrypt_init().unwrap();
    match transport {
        Transport::Rsa15 => ctx.set_rsa_padding(Padding::PKCS1).unwrap(),
        Transport::OaepMgf1p(d) => {
            ctx.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
            ctx.set_rsa_oaep_md(d.unwrap_or(Digest::Sha1).md()).unwrap();
            ctx.set_rsa_mgf1_md(Md::sha1()).unwrap();
        }
        Transport::Oaep11 { digest, mgf } => {
            ctx.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
            ctx.set_rsa_oaep_md(digest.md()).unwrap();
            ctx.set_rsa_mgf1_md(mgf.md()).unwrap();
        }
    }
    let mut out = Vec::new();
    ctx.encrypt_to_vec(cek, &mut out).unwrap();
    out
}

fn key_method(transport: Transport) -> String {
    match transport {
        Transport::Rsa15 => {
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-1_5"/>"#
                .to_owned()
        }
        Transport::OaepMgf1p(d) => format!(
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p">{}</xenc:EncryptionMethod>"#,
            d.map(|d| format!(
                r#"<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="{}"/>"#,
                d.digest_uri()
            ))
            .unwrap_or_default()
        ),
        Transport::Oaep11 { digest, mgf } => format!(
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"><ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="{}"/><xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="{}"/></xenc:EncryptionMethod>"#,
            digest.digest_uri(),
            mgf.mgf_uri()
        ),
    }
}

/// The `saml:EncryptedAssertion` element carrying `assertion_xml`.
pub fn encrypt_assertion(assertion_xml: &str, enc: &Encryption) -> String {
    let cek = random(enc.content.key_len());
    let data = encrypt_content(enc.content, &cek, assertion_xml.as_bytes());
    let wrapped = wrap_key(enc.transport, &enc.to.public_key().unwrap(), &cek);
    let encrypted_key = format!(
        r#"<xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">{}<xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>"#,
        key_method(enc.transport),
        b64(&wrapped)
    );
    let (inside, beside) = match enc.placement {
        KeyPlacement::InKeyInfo => (
            format!(
                r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">{encrypted_key}</ds:KeyInfo>"#
            ),
            String::new(),
        ),
        KeyPlacement::Sibling => (String::new(), encrypted_key),
    };
    format!(
        r#"<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod Algorithm="{alg}"/>{inside}<xenc:CipherData><xenc:CipherValue>{ct}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>{beside}</saml:EncryptedAssertion>"#,
        alg = enc.content.uri(),
        ct = b64(&data),
    )
}
