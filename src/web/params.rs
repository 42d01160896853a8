//! Form and query parsing that never rejects with someone else's error shape: values are read
//! from `application/x-www-form-urlencoded` text, and a parameter given twice is reported, as
//! OAuth requires (RFC 6749 §3.1).

use std::collections::HashMap;

pub struct Params(HashMap<String, String>);

#[derive(Debug)]
pub struct DuplicateParam(pub String);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, DuplicateParam> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw) {
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(DuplicateParam(k.into_owned()));
            }
        }
        Ok(Self(map))
    }

    pub fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }
}
