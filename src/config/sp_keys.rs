//! The SP's key material of one SAML connection: the main pair (signs AuthnRequests, decrypts),
//! an optional separate decryption pair, and retired keys kept for decryption during a
//! rollover. Read and parsed once, here; each problem names its key.

use std::path::{Path, PathBuf};

use super::{model, ConfigError, Lint};
use crate::saml::sp_keys::{RetiredKey, SpKeyError, SpKeyPair};

pub(super) struct SpKeys {
    pub signing: Option<SpKeyPair>,
    pub decryption: Option<SpKeyPair>,
    pub retired: Vec<RetiredKey>,
}

/// `key` is the connection's key path (`connections[0]`).
pub(super) fn resolve(
    key: &str,
    s: &model::SamlSection,
    base: &Path,
    lints: &mut Vec<Lint>,
) -> Result<SpKeys, ConfigError> {
    let (signing, decryption) = load_pairs(key, s, base)?;
    let private_files = [
        ("sp_key_file".to_owned(), s.sp_key_file.as_ref()),
        (
            "sp_encryption_key_file".to_owned(),
            s.sp_encryption_key_file.as_ref(),
        ),
    ]
    .into_iter()
    .chain(
        s.sp_retired_key_files
            .iter()
            .enumerate()
            .map(|(j, f)| (format!("sp_retired_key_files[{j}]"), Some(f))),
    );
    for (name, file) in private_files {
        if let Some(file) = file.filter(|f| readable_by_others(&base.join(f))) {
            lints.push(Lint {
                key: format!("{key}.saml.{name}"),
                message: format!(
                    "{} can be read by other users: chmod 600 it (it decrypts every encrypted assertion)",
                    file.display()
                ),
            });
        }
    }
    let mut retired = Vec::new();
    for (j, file) in s.sp_retired_key_files.iter().enumerate() {
        let rkey = format!("{key}.saml.sp_retired_key_files[{j}]");
        if decryption.is_none() {
            return Err(ConfigError::new(
                rkey,
                "retired keys only make sense beside a current one: set sp_key_file and sp_cert_file",
            ));
        }
        let path = base.join(file);
        let pem = std::fs::read(&path)
            .map_err(|e| ConfigError::new(&rkey, format!("cannot read {}: {e}", path.display())))?;
        retired
            .push(RetiredKey::from_pem(&pem).map_err(|e| ConfigError::new(&rkey, e.to_string()))?);
    }
    if s.sign_authn_requests && signing.is_none() {
        return Err(ConfigError::new(
            format!("{key}.saml.sign_authn_requests"),
            "signing AuthnRequests needs sp_key_file and sp_cert_file",
        ));
    }
    if s.require_encrypted && decryption.is_none() {
        return Err(ConfigError::new(
            format!("{key}.saml.require_encrypted"),
            "encrypted assertions need a decryption key: set sp_key_file and sp_cert_file (or sp_encryption_key_file and sp_encryption_cert_file)",
        ));
    }
    Ok(SpKeys {
        signing,
        decryption,
        retired,
    })
}

/// Whether a private key file grants any permission to group or others.
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Loads the SP key pairs once. The main pair signs and, unless a separate encryption pair is
/// named, also decrypts. Each key file goes with its certificate: one without the other is an
/// error, so a half-finished rollover is caught at start.
fn load_pairs(
    key: &str,
    s: &model::SamlSection,
    base: &Path,
) -> Result<(Option<SpKeyPair>, Option<SpKeyPair>), ConfigError> {
    let load = |key_name: &str,
                cert_name: &str,
                key_file: &Option<PathBuf>,
                cert_file: &Option<PathBuf>|
     -> Result<Option<SpKeyPair>, ConfigError> {
        let (key_file, cert_file) = match (key_file, cert_file) {
            (None, None) => return Ok(None),
            (Some(k), Some(c)) => (base.join(k), base.join(c)),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    format!("{key}.saml.{cert_name}"),
                    format!("{key_name} is set: name its certificate too"),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    format!("{key}.saml.{key_name}"),
                    format!("{cert_name} is set: name its private key too"),
                ))
            }
        };
        let read = |name: &str, path: &Path| {
            std::fs::read(path).map_err(|e| {
                ConfigError::new(
                    format!("{key}.saml.{name}"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })
        };
        let key_pem = read(key_name, &key_file)?;
        let cert_pem = read(cert_name, &cert_file)?;
        SpKeyPair::from_pem(&key_pem, &cert_pem)
            .map(Some)
            .map_err(|e| {
                let at = match e {
                    SpKeyError::Certificate => cert_name,
                    _ => key_name,
                };
                ConfigError::new(format!("{key}.saml.{at}"), e.to_string())
            })
    };
    let main = load(
        "sp_key_file",
        "sp_cert_file",
        &s.sp_key_file,
        &s.sp_cert_file,
    )?;
    let separate = load(
        "sp_encryption_key_file",
        "sp_encryption_cert_file",
        &s.sp_encryption_key_file,
        &s.sp_encryption_cert_file,
    )?;
    // Clones share the parsed key (reference counted), nothing is parsed twice.
    let decryption = separate.or_else(|| main.clone());
    Ok((main, decryption))
}
