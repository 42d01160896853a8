//! `Email` and `Domain`: normalised once, on construction, so the rest of the code compares
//! values, never raw strings. Rules (DESIGN.md §10): the whole address lowercased; the domain
//! taken after the last `@`, converted IDN → punycode, one trailing dot dropped.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address has no '@'")]
    MissingAt,
    #[error("the address has more than one '@'")]
    SeveralAt,
    #[error("quoted local parts are not accepted")]
    Quoted,
    #[error("the local part is empty or invalid")]
    BadLocalPart,
    #[error("the domain is empty or invalid")]
    BadDomain,
}

/// A DNS domain in its canonical ASCII (punycode) lowercase form, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() || trimmed.ends_with('.') || trimmed.starts_with('.') {
            return Err(AddressError::BadDomain);
        }
        let ascii = idna::domain_to_ascii(trimmed).map_err(|_| AddressError::BadDomain)?;
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if ascii.is_empty() || ascii.len() > 253 || !ascii.split('.').all(valid_label) {
            return Err(AddressError::BadDomain);
        }
        Ok(Self(ascii.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, lowercased as a whole, with a canonical `Domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email {
    address: String,
    domain: Domain,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(AddressError::Empty);
        }
        if raw.contains('"') {
            return Err(AddressError::Quoted);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(AddressError::MissingAt)?;
        if local.contains('@') {
            return Err(AddressError::SeveralAt);
        }
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"()<>,;:\\[]".contains(c));
        if !local_ok {
            return Err(AddressError::BadLocalPart);
        }
        let domain = Domain::parse(domain)?;
        let address = format!("{}@{}", local.to_lowercase(), domain.as_str());
        Ok(Self { address, domain })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.address)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Domain::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_the_whole_address() {
        let e = Email::parse("Bob.Builder@ACME.test").unwrap();
        assert_eq!(e.as_str(), "bob.builder@acme.test");
        assert_eq!(e.domain().as_str(), "acme.test");
    }

    #[test]
    fn idn_domain_becomes_punycode_and_loses_one_trailing_dot() {
        let e = Email::parse("ana@Bücher.example.").unwrap();
        assert_eq!(e.as_str(), "ana@xn--bcher-kva.example");
        assert_eq!(
            Domain::parse("xn--bcher-kva.example").unwrap(),
            Domain::parse("BÜCHER.example").unwrap()
        );
        assert_eq!(
            Domain::parse("example.com..").unwrap_err(),
            AddressError::BadDomain
        );
    }

    #[test]
    fn refuses_ambiguous_forms() {
        assert_eq!(
            Email::parse("a@b@acme.test").unwrap_err(),
            AddressError::SeveralAt
        );
        assert_eq!(
            Email::parse("\"a@b\"@acme.test").unwrap_err(),
            AddressError::Quoted
        );
        assert_eq!(
            Email::parse("acme.test").unwrap_err(),
            AddressError::MissingAt
        );
        assert_eq!(Email::parse("").unwrap_err(), AddressError::Empty);
        assert_eq!(
            Email::parse("@acme.test").unwrap_err(),
            AddressError::BadLocalPart
        );
        assert_eq!(
            Email::parse("a b@acme.test").unwrap_err(),
            AddressError::BadLocalPart
        );
        assert_eq!(Email::parse("a@").unwrap_err(), AddressError::BadDomain);
        assert_eq!(
            Email::parse("a@-x.test").unwrap_err(),
            AddressError::BadDomain
        );
    }
}
