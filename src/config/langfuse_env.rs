//! The Langfuse environment block that matches a bridge config (`sso-bridge langfuse-env`):
//! the `AUTH_CUSTOM_*` values of the client, the issuer, and the SSO-enforcement settings, each
//! with a comment saying why. Secrets are never printed: the block points at their source.

use std::fmt::Write;

use super::{Client, RuntimeConfig, SecretSource};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(String);

fn line(o: &mut String, comment: &str, kv: &str) {
    let _ = writeln!(o, "# {comment}\n{kv}");
}

pub fn render(
    config: &RuntimeConfig,
    client_id: Option<&str>,
    button: Option<&str>,
) -> Result<String, EnvError> {
    let client: &Client = match client_id {
        Some(id) => config
            .client(id)
            .ok_or_else(|| EnvError(format!("no [[clients]] entry has id {id:?}")))?,
        None => config
            .clients
            .first()
            .ok_or_else(|| EnvError("the config has no [[clients]]".into()))?,
    };
    let mut o = String::new();
    line(
        &mut o,
        "The OIDC client Langfuse logs in as (the bridge's [[clients]] entry).",
        &format!("AUTH_CUSTOM_CLIENT_ID={}", client.id),
    );
    let secret = match &client.secret_source {
        SecretSource::Env(var) => (
            format!("Same value as the bridge's secret, read from the same environment variable ({var})."),
            format!("AUTH_CUSTOM_CLIENT_SECRET=${{{var}}}"),
        ),
        SecretSource::File(path) => (
            format!("Same value as the bridge's secret: the contents of {}.", path.display()),
            "AUTH_CUSTOM_CLIENT_SECRET=<contents of that file>".to_owned(),
        ),
        SecretSource::Inline => (
            "Same value as the bridge's inline secret (move it to an environment variable).".to_owned(),
            "AUTH_CUSTOM_CLIENT_SECRET=<the client secret>".to_owned(),
        ),
    };
    line(&mut o, &secret.0, &secret.1);
    line(&mut o,
        "The bridge's public_url, byte for byte: no trailing slash, or Langfuse's issuer check fails.",
        &format!("AUTH_CUSTOM_ISSUER={}", config.public_url),
    );
    let name = button
        .map(str::to_owned)
        .or_else(|| {
            (config.connections.len() == 1).then(|| config.connections[0].display_name.clone())
        })
        .unwrap_or_else(|| "Single sign-on".to_owned());
    line(
        &mut o,
        "The label of the sign-in button.",
        &format!("AUTH_CUSTOM_NAME=\"{}\"", name.replace('"', "'")),
    );
    line(
        &mut o,
        "Langfuse reads email and name from the ID token; the bridge also returns groups.",
        "AUTH_CUSTOM_SCOPE=\"openid email profile\"",
    );
    line(
        &mut o,
        "Either method works with any secret (the bridge decodes RFC 6749 Basic credentials).",
        "AUTH_CUSTOM_CLIENT_AUTH_METHOD=client_secret_basic",
    );

    let enforced: Vec<&str> = config
        .connections
        .iter()
        .filter(|c| c.enforce_sso)
        .flat_map(|c| c.domains.iter().map(|d| d.domain.as_str()))
        .collect();
    if enforced.is_empty() {
        let _ = writeln!(
            o,
            "# No connection enforces SSO: Langfuse keeps offering passwords to every domain."
        );
    } else {
        let sub = config
            .connections
            .iter()
            .filter(|c| c.enforce_sso)
            .flat_map(|c| c.domains.iter())
            .any(|d| d.include_subdomains);
        let mut comment =
            "Addresses in these domains must use SSO; Langfuse refuses their passwords.".to_owned();
        if sub {
            comment
                .push_str(" Langfuse matches these exactly: list subdomains you use one by one.");
        }
        line(
            &mut o,
            &comment,
            &format!("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT={}", enforced.join(",")),
        );
    }
    let all_enforced =
        !config.connections.is_empty() && config.connections.iter().all(|c| c.enforce_sso);
    if all_enforced {
        line(
            &mut o,
            "Everyone signs in through the bridge: turn off Langfuse's own password login.",
            "AUTH_DISABLE_USERNAME_PASSWORD=true",
        );
    } else {
        line(
            &mut o,
            "Some connection does not enforce SSO, so password login stays on.",
            "AUTH_DISABLE_USERNAME_PASSWORD=false",
        );
    }
    line(&mut o,
        "Users are created in Langfuse at their first SSO login, which is a sign-up: keep it allowed.",
        "AUTH_DISABLE_SIGNUP=false",
    );
    if config.langfuse.enabled() {
        line(
            &mut o,
            "Provisioning is on: the bridge creates each user in Langfuse (SCIM) before their first sign-in,\n# so Langfuse must link that sign-in to the existing user, or it answers OAuthAccountNotLinked.\n# The bridge's domain guard is what makes linking safe.",
            "AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true",
        );
    } else {
        let _ = writeln!(
            o,
            "# Only when users are created ahead of their first login (SCIM, provisioning), Langfuse must\n# link the SSO login to the existing user; the bridge's domain guard is what makes that safe:\n# AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true"
        );
    }
    Ok(o)
}
