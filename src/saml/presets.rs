//! Attribute presets: the attribute names each IdP product sends by default (or that its setup
//! guide in the README tells the operator to configure), so a connection works on the first
//! try. The operator's explicit names always win over a preset.

/// Entra ID sends this instead of the groups claim when a user is in more groups than fit in a
/// token (150 for SAML). Detected on every connection, preset or not.
pub const ENTRA_GROUPS_LINK: &str = "http://schemas.microsoft.com/claims/groups.link";

pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// Which attribute carries what, resolved from preset and overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMap {
    pub email: String,
    pub name: String,
    pub groups: String,
    /// Groups arrive as one string joined by this delimiter (split, trimmed, empties dropped).
    pub groups_delimiter: Option<String>,
    /// The IdP subject comes from this attribute instead of the NameID.
    pub subject: Option<String>,
}

/// A preset's defaults: attribute names and the NameID format to ask for (None: don't ask).
#[derive(Debug, Clone, Copy)]
pub struct PresetDefaults {
    pub email: &'static str,
    pub name: &'static str,
    pub groups: &'static str,
    pub subject: Option<&'static str>,
    pub name_id_format: Option<&'static str>,
}

/// Without a preset: short, lower-case names, as most IdPs let the operator choose them.
pub const GENERIC: PresetDefaults = PresetDefaults {
    email: "email",
    name: "displayName",
    groups: "groups",
    subject: None,
    name_id_format: None,
};

/// Defaults for a preset by its config name.
pub fn defaults(preset: &str) -> Option<PresetDefaults> {
    Some(match preset {
        // Okta: attribute statements named as below, a group attribute statement "groups".
        "okta" => PresetDefaults {
            email: "email",
            name: "displayName",
            groups: "groups",
            subject: None,
            name_id_format: None,
        },
        // Entra ID: claim URIs; the object id is the only stable subject (the NameID defaults
        // to the UPN, which changes on rename).
        "entra" => PresetDefaults {
            email: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            name: "http://schemas.microsoft.com/identity/claims/displayname",
            groups: "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
            subject: Some("http://schemas.microsoft.com/identity/claims/objectidentifier"),
            name_id_format: None,
        },
        // ADFS: claim URIs from the "Send LDAP Attributes as Claims" rule; groups from
        // "Token-Groups - Unqualified Names" mapped to the Group claim.
        "adfs" => PresetDefaults {
            email: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            groups: "http://schemas.xmlsoap.org/claims/Group",
            subject: None,
            name_id_format: Some(NAMEID_PERSISTENT),
        },
        // Google Workspace honours whatever NameID format is asked for: ask for the email
        // explicitly, never transient (field case 016).
        "google" => PresetDefaults {
            email: "email",
            name: "name",
            groups: "groups",
            subject: None,
            name_id_format: Some(NAMEID_EMAIL),
        },
        // OneLogin's SAML custom connector parameter names.
        "onelogin" => PresetDefaults {
            email: "User.email",
            name: "User.FirstName",
            groups: "memberOf",
            subject: None,
            name_id_format: None,
        },
        // JumpCloud: user attributes as named in the SSO app, group attribute "memberOf".
        "jumpcloud" => PresetDefaults {
            email: "email",
            name: "displayName",
            groups: "memberOf",
            subject: None,
            name_id_format: None,
        },
        // Keycloak: "User Property" mappers and a "Group list" mapper named groups.
        "keycloak" => PresetDefaults {
            email: "email",
            name: "name",
            groups: "groups",
            subject: None,
            name_id_format: Some(NAMEID_PERSISTENT),
        },
        _ => return None,
    })
}
