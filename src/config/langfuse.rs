//! The `[langfuse]` section's provisioning part: the admin API base URL and, per organization,
//! its API key, provisioning mode and failure policy. Resolved into `provision::Settings`.

use std::path::Path;
use std::time::Duration;

use super::policy::LangfuseSection;
use super::{secrets, ConfigError, EnvLookup, Lint};
use crate::provision::{Mode, OnError, OrgKeys, OrgSettings, Settings};

pub(super) fn resolve(
    section: &LangfuseSection,
    base: &Path,
    env: &EnvLookup,
    lints: &mut Vec<Lint>,
) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    if let Some(t) = section.timeout_secs {
        if t == 0 || t > 60 {
            return Err(ConfigError::new(
                "langfuse.timeout_secs",
                "must be between 1 and 60 seconds (a login waits for it)",
            ));
        }
        settings.timeout = Duration::from_secs(t);
    }
    if let Some(r) = section.max_retries {
        if r > 5 {
            return Err(ConfigError::new(
                "langfuse.max_retries",
                "at most 5 (a login waits for every retry)",
            ));
        }
        settings.max_retries = r;
    }
    if let Some(raw) = &section.url {
        let value = secrets::interpolate("langfuse.url", raw, env)?;
        let trimmed = value.trim_end_matches('/');
        let url = url::Url::parse(trimmed)
            .map_err(|e| ConfigError::new("langfuse.url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
            return Err(ConfigError::new(
                "langfuse.url",
                "must be Langfuse's http(s) base URL, without a query",
            ));
        }
        settings.url = Some(url);
    }

    for (i, o) in section.organizations.iter().enumerate() {
        let key = format!("langfuse.organizations[{i}]");
        let mode = match o.provisioning.as_deref() {
            None => Mode::Off,
            Some(m) => Mode::parse(m).ok_or_else(|| {
                ConfigError::new(
                    format!("{key}.provisioning"),
                    format!("{m:?}: use \"off\", \"additive\" or \"authoritative\""),
                )
            })?,
        };
        let on_error = match o.on_error.as_deref() {
            None | Some("deny") => OnError::Deny,
            Some("allow") => OnError::Allow,
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{key}.on_error"),
                    format!("{other:?}: use \"deny\" or \"allow\""),
                ))
            }
        };
        let public_key = o
            .public_key
            .as_deref()
            .map(|raw| secrets::interpolate(&format!("{key}.public_key"), raw, env))
            .transpose()?;
        let secret_key = secrets::optional(
            &format!("{key}.secret_key"),
            o.secret_key.as_deref(),
            o.secret_key_file.as_deref(),
            base,
            env,
            lints,
        )?;
        let keys = match (public_key, secret_key) {
            (Some(pk), Some(sk)) => {
                if !pk.starts_with("pk-lf-") {
                    lints.push(Lint {
                        key: format!("{key}.public_key"),
                        message: "does not start with pk-lf-: is it a Langfuse API key?".into(),
                    });
                }
                Some(OrgKeys {
                    public_key: pk,
                    secret_key: sk,
                })
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    &key,
                    "set both public_key and secret_key (an organization API key), or neither",
                ))
            }
        };
        if mode != Mode::Off {
            if keys.is_none() {
                return Err(ConfigError::new(
                    format!("{key}.public_key"),
                    format!(
                        "provisioning = \"{}\" needs the organization's API key (public_key and secret_key)",
                        mode.as_str()
                    ),
                ));
            }
            if settings.url.is_none() {
                return Err(ConfigError::new(
                    "langfuse.url",
                    format!("required: {key} has provisioning = \"{}\"", mode.as_str()),
                ));
            }
            if on_error == OnError::Allow {
                lints.push(Lint {
                    key: format!("{key}.on_error"),
                    message: "is \"allow\": when Langfuse cannot be provisioned, users log in with the roles Langfuse already has (possibly stale)".into(),
                });
            }
        }
        settings.organizations.push(OrgSettings {
            id: o.id.clone(),
            mode,
            on_error,
            keys,
        });
    }
    Ok(settings)
}
