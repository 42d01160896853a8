//! Secret values in the config: `"${ENV_VAR}"` interpolation, or a sibling `*_file` key. An
//! inline literal works, but is reported as a lint.

use std::path::Path;

use super::{ConfigError, Lint};
use crate::secret::Secret;

/// How configuration reads the environment; only the CLI passes the real one.
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

pub(super) fn required(
    key: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    base: &Path,
    env: &EnvLookup,
    lints: &mut Vec<Lint>,
) -> Result<Secret, ConfigError> {
    optional(key, inline, file, base, env, lints)?
        .ok_or_else(|| ConfigError::new(key, format!("missing: set {key} or {key}_file")))
}

pub(super) fn optional(
    key: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    base: &Path,
    env: &EnvLookup,
    lints: &mut Vec<Lint>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            format!("set either {key} or {key}_file, not both"),
        )),
        (Some(raw), None) => {
            let value = interpolate(key, raw, env)?;
            if !raw.contains("${") {
                lints.push(Lint {
                    key: key.into(),
                    message: "is written inline; prefer \"${ENV_VAR}\" or a _file key so the config can be shared".into(),
                });
            }
            if value.is_empty() {
                return Err(ConfigError::new(key, "is empty"));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, Some(path)) => {
            let full = base.join(path);
            let text = std::fs::read_to_string(&full).map_err(|e| {
                ConfigError::new(
                    format!("{key}_file"),
                    format!("cannot read {}: {e}", full.display()),
                )
            })?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(ConfigError::new(format!("{key}_file"), "the file is empty"));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, None) => Ok(None),
    }
}

/// Replaces each `${NAME}` with the variable's value; an unset variable is an error naming both.
pub(super) fn interpolate(key: &str, raw: &str, env: &EnvLookup) -> Result<String, ConfigError> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ConfigError::new(key, "unterminated ${...}"))?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfigError::new(
                key,
                format!("invalid variable name {name:?}"),
            ));
        }
        let value = env(name).ok_or_else(|| {
            ConfigError::new(key, format!("environment variable {name} is not set"))
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SECRET").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn interpolates_and_names_missing_variables() {
        assert_eq!(
            interpolate("k", "a-${SECRET}-b", &env).unwrap(),
            "a-s3cr3t-b"
        );
        let err = interpolate("clients[0].secret", "${NOPE}", &env).unwrap_err();
        assert_eq!(err.key, "clients[0].secret");
        assert!(err.message.contains("NOPE"));
        assert!(interpolate("k", "${SECRET", &env).is_err());
    }

    #[test]
    fn inline_literal_is_linted_interpolation_is_not() {
        let mut lints = Vec::new();
        optional(
            "k",
            Some("${SECRET}"),
            None,
            Path::new("."),
            &env,
            &mut lints,
        )
        .unwrap();
        assert!(lints.is_empty());
        optional("k", Some("literal"), None, Path::new("."), &env, &mut lints).unwrap();
        assert_eq!(lints.len(), 1);
    }
}
