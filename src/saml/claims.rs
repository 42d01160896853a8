//! Reading the user out of a verified assertion: subject, email, name and groups, by the
//! connection's attribute map. Only ever called on an assertion parsed from the bytes the
//! signature covers. Ambiguity is refused rather than resolved by picking a value.

use samael::schema::Assertion;

use super::acs::AcsError;
use super::presets::{
    AttributeMap, ENTRA_GROUPS_LINK, NAMEID_EMAIL, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED,
};
use crate::policy::Email;

/// The identity part of a verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub subject: String,
    pub email: Email,
    pub name: Option<String>,
    /// A set: sorted, without duplicates or empty names.
    pub groups: Vec<String>,
}

pub fn extract(a: &Assertion, names: &AttributeMap) -> Result<Claims, AcsError> {
    let subject = match &names.subject {
        Some(attr) => single_value(a, attr)?,
        None => name_id_subject(a)?,
    };
    let email_raw = single_value(a, &names.email)?;
    let email = Email::parse(&email_raw).map_err(|_| AcsError::Email)?;
    let name = values(a, &names.name).into_iter().next();

    // "Groups unknown" (Entra overage) is not "no groups": refuse, so a heavy user is never
    // silently demoted (field case 005).
    if attribute_present(a, ENTRA_GROUPS_LINK) {
        return Err(AcsError::GroupOverage);
    }
    let mut groups: Vec<String> = match &names.groups_delimiter {
        Some(d) => values(a, &names.groups)
            .iter()
            .flat_map(|v| v.split(d.as_str()))
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect(),
        None => values(a, &names.groups),
    };
    groups.sort();
    groups.dedup();
    Ok(Claims {
        subject,
        email,
        name,
        groups,
    })
}

/// The NameID as subject. Transient ones change every login and are refused; email-shaped
/// emailAddress/unspecified ones are normalised like emails, so `Li.Wei@Example.com` and
/// `li.wei@example.com` are one account (field case 016). Persistent ids are opaque: kept as is.
fn name_id_subject(a: &Assertion) -> Result<String, AcsError> {
    let name_id = a
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .ok_or(AcsError::Subject)?;
    let format = name_id.format.as_deref().unwrap_or(NAMEID_UNSPECIFIED);
    let value = name_id.value.trim();
    if format == NAMEID_TRANSIENT || value.is_empty() {
        return Err(AcsError::Subject);
    }
    if format == NAMEID_EMAIL || format == NAMEID_UNSPECIFIED {
        if let Ok(email) = Email::parse(value) {
            return Ok(email.as_str().to_owned());
        }
        if format == NAMEID_EMAIL {
            return Err(AcsError::Subject);
        }
    }
    Ok(value.to_owned())
}

fn attributes<'a>(
    a: &'a Assertion,
    name: &'a str,
) -> impl Iterator<Item = &'a samael::attribute::Attribute> {
    a.attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| s.attributes.iter())
        // Name only: FriendlyName is free text an IdP admin may set to anything (case 015 F).
        .filter(move |at| at.name.as_deref() == Some(name))
}

fn attribute_present(a: &Assertion, name: &str) -> bool {
    attributes(a, name).next().is_some()
}

/// Every non-empty value of every attribute called `name`, in every AttributeStatement:
/// one multi-valued element and the element repeated give the same result (case 015).
fn values(a: &Assertion, name: &str) -> Vec<String> {
    attributes(a, name)
        .flat_map(|at| at.values.iter())
        .filter_map(|v| v.value.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Exactly one distinct value, else a refusal naming the attribute (and, when it is missing,
/// the names that did arrive, so the operator sees the fix).
fn single_value(a: &Assertion, name: &str) -> Result<String, AcsError> {
    let mut vals = values(a, name);
    vals.dedup();
    vals.sort();
    vals.dedup();
    match vals.len() {
        1 => Ok(vals.remove(0)),
        0 => Err(AcsError::MissingAttribute {
            attribute: name.to_owned(),
            received: received_names(a),
        }),
        _ => Err(AcsError::AmbiguousAttribute(name.to_owned())),
    }
}

/// Attribute names present (names only, never values), capped so a hostile IdP cannot make
/// the message huge.
fn received_names(a: &Assertion) -> Vec<String> {
    let mut names: Vec<String> = a
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| s.attributes.iter())
        .filter_map(|at| at.name.as_deref())
        .map(|n| n.chars().take(200).collect())
        .collect();
    names.sort();
    names.dedup();
    names.truncate(20);
    names
}
