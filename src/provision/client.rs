//! The Langfuse admin API client (reference/langfuse-admin-api.md §2–§3): one shared reqwest
//! client (connections reused across logins), HTTP Basic with an organization key, bounded
//! retries, and errors that name what went wrong in words an operator can act on — above all
//! the 403 that means the Enterprise licence is missing.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::retry::{parse_retry_after, RetryPolicy, SharedSleeper};
use super::OrgKeys;
use crate::clock::SharedClock;
use crate::policy::{Email, Role};

/// The 403 bodies Langfuse uses for its licence gates and the wrong key scope (ref §0).
const NO_LICENCE: &str = "This feature is not available on your current plan.";
const NO_PROJECT_ROLES: &str = "Your plan does not include project role management.";
const ORG_KEY_REQUIRED: &str = "Organization-scoped API key required";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("Langfuse has no Enterprise licence: its admin API (organization and project memberships, SCIM) needs LANGFUSE_EE_LICENSE_KEY with an Enterprise plan")]
    LicenceMissing,
    #[error(
        "Langfuse's licence does not include project role management (Enterprise plan needed)"
    )]
    ProjectRolesNotLicensed,
    #[error("the configured key is a project key; Langfuse needs an organization API key here")]
    NotOrgKey,
    #[error("Langfuse rejected the organization API key (401): check public_key and secret_key")]
    Unauthorized,
    #[error("Langfuse refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("Langfuse is unavailable: {0}")]
    Unavailable(String),
    #[error("Langfuse sent an answer the bridge cannot read: {0}")]
    BadAnswer(String),
}

impl ApiError {
    pub fn licence_missing(&self) -> bool {
        matches!(
            self,
            ApiError::LicenceMissing | ApiError::ProjectRolesNotLicensed
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub user_id: String,
    pub role: Role,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
}

/// Outcome of a SCIM create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The user (new, or an existing Langfuse user reused) is now a member; their id.
    Member(String),
    /// 409: already a member of this organization.
    AlreadyMember,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    retry: RetryPolicy,
    sleeper: SharedSleeper,
    clock: SharedClock,
}

impl Client {
    pub fn new(
        base: url::Url,
        timeout: Duration,
        retry: RetryPolicy,
        sleeper: SharedSleeper,
        clock: SharedClock,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            retry,
            sleeper,
            clock,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// One request with bounded retries. Every call here is safe to repeat: GET/PUT/DELETE are
    /// idempotent, and a repeated SCIM create answers 409, which callers handle.
    async fn send(
        &self,
        keys: &OrgKeys,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ApiError> {
        let mut retry = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), self.url(path))
                .basic_auth(&keys.public_key, Some(keys.secret_key.expose()));
            if let Some(b) = body {
                req = req.json(b);
            }
            let (wait, failure) = match req.send().await {
                Err(e) => {
                    // The error text may carry the URL but never the credentials.
                    let what = if e.is_timeout() {
                        "timed out".to_owned()
                    } else if e.is_connect() {
                        "cannot connect".to_owned()
                    } else {
                        format!("request failed: {}", e.without_url())
                    };
                    (None, ApiError::Unavailable(what))
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, self.clock.now()));
                    let text = resp.text().await.unwrap_or_default();
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        let msg = format!("{} from {path}", status.as_u16());
                        (retry_after, ApiError::Unavailable(msg))
                    } else {
                        return classify(status, value);
                    }
                }
            };
            if retry >= self.retry.max_retries {
                return Err(failure);
            }
            let delay = match wait {
                Some(d) if d > self.retry.max_retry_after => {
                    return Err(ApiError::Unavailable(format!(
                        "rate limited; Langfuse asks to wait {}s",
                        d.as_secs()
                    )))
                }
                Some(d) => d,
                None => self.retry.backoff(retry),
            };
            tracing::debug!(path, retry, ?delay, "retrying a Langfuse request");
            self.sleeper.sleep(delay).await;
            retry += 1;
        }
    }

    pub async fn org_members(&self, keys: &OrgKeys) -> Result<Vec<Membership>, ApiError> {
        let (_, v) = self
            .send(
                keys,
                Method::GET,
                "/api/public/organizations/memberships",
                None,
            )
            .await?;
        field(v, "memberships")
    }

    pub async fn put_org_member(
        &self,
        keys: &OrgKeys,
        user_id: &str,
        role: Role,
    ) -> Result<(), ApiError> {
        let body = json!({ "userId": user_id, "role": role });
        self.send(
            keys,
            Method::PUT,
            "/api/public/organizations/memberships",
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    pub async fn projects(&self, keys: &OrgKeys) -> Result<Vec<ProjectRef>, ApiError> {
        let (_, v) = self
            .send(
                keys,
                Method::GET,
                "/api/public/organizations/projects",
                None,
            )
            .await?;
        field(v, "projects")
    }

    pub async fn project_members(
        &self,
        keys: &OrgKeys,
        project_id: &str,
    ) -> Result<Vec<Membership>, ApiError> {
        let path = format!("/api/public/projects/{}/memberships", segment(project_id));
        let (_, v) = self.send(keys, Method::GET, &path, None).await?;
        field(v, "memberships")
    }

    pub async fn put_project_member(
        &self,
        keys: &OrgKeys,
        project_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<(), ApiError> {
        let path = format!("/api/public/projects/{}/memberships", segment(project_id));
        let body = json!({ "userId": user_id, "role": role });
        self.send(keys, Method::PUT, &path, Some(&body))
            .await
            .map(|_| ())
    }

    /// Removes a project override; one already gone counts as removed.
    pub async fn delete_project_member(
        &self,
        keys: &OrgKeys,
        project_id: &str,
        user_id: &str,
    ) -> Result<(), ApiError> {
        let path = format!("/api/public/projects/{}/memberships", segment(project_id));
        let body = json!({ "userId": user_id });
        match self.send(keys, Method::DELETE, &path, Some(&body)).await {
            Err(ApiError::Refused {
                status: 404,
                message,
            }) if message.contains("membership") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// SCIM create (ref §3): creates the Langfuse user if the email is new, or reuses the
    /// existing one, and makes them a member with `role`.
    pub async fn scim_create(
        &self,
        keys: &OrgKeys,
        email: &Email,
        name: Option<&str>,
        role: Role,
    ) -> Result<Created, ApiError> {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": email.as_str(),
            "roles": [role],
        });
        if let Some(n) = name {
            body["name"] = json!({ "formatted": n });
        }
        match self
            .send(keys, Method::POST, "/api/public/scim/Users", Some(&body))
            .await
        {
            Ok((_, v)) => v["id"]
                .as_str()
                .map(|id| Created::Member(id.to_owned()))
                .ok_or_else(|| ApiError::BadAnswer("SCIM create without an id".into())),
            Err(ApiError::Refused { status: 409, .. }) => Ok(Created::AlreadyMember),
            Err(e) => Err(e),
        }
    }

    /// Verifies a key for `check --online`: lists the organization's projects (admin-api gate)
    /// and reads one project's memberships (the project-roles gate, reference §2.2).
    pub async fn check(&self, keys: &OrgKeys) -> Result<Vec<ProjectRef>, ApiError> {
        let list = self.projects(keys).await?;
        if let Some(first) = list.first() {
            self.project_members(keys, &first.id).await?;
        }
        Ok(list)
    }

    /// SCIM lookup by `userName eq "…"` (case-insensitive in Langfuse); members only.
    pub async fn scim_find(
        &self,
        keys: &OrgKeys,
        email: &Email,
    ) -> Result<Option<String>, ApiError> {
        let filter = format!("userName eq \"{}\"", email.as_str());
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter)
            .finish();
        let path = format!("/api/public/scim/Users?{query}");
        let (_, v) = self.send(keys, Method::GET, &path, None).await?;
        Ok(v["Resources"]
            .as_array()
            .and_then(|r| {
                r.iter().find(|u| {
                    u["userName"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(email.as_str()))
                })
            })
            .and_then(|u| u["id"].as_str())
            .map(str::to_owned))
    }
}

/// Maps a non-retryable answer to a result, recognising Langfuse's texts.
fn classify(status: StatusCode, value: Value) -> Result<(StatusCode, Value), ApiError> {
    if status.is_success() {
        return Ok((status, value));
    }
    let message = ["error", "message", "detail"]
        .iter()
        .find_map(|k| value[*k].as_str())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect::<String>();
    Err(match status.as_u16() {
        401 => ApiError::Unauthorized,
        403 if message == NO_LICENCE => ApiError::LicenceMissing,
        403 if message == NO_PROJECT_ROLES => ApiError::ProjectRolesNotLicensed,
        403 if message.contains(ORG_KEY_REQUIRED) => ApiError::NotOrgKey,
        s => ApiError::Refused { status: s, message },
    })
}

fn field<T: serde::de::DeserializeOwned>(mut v: Value, name: &str) -> Result<T, ApiError> {
    serde_json::from_value(v[name].take()).map_err(|e| ApiError::BadAnswer(format!("{name}: {e}")))
}

/// A project id as one path segment (ids come from Langfuse, but the config may name one).
fn segment(s: &str) -> String {
    // Everything but RFC 3986 unreserved characters.
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_langfuse_texts() {
        let c = |s: u16, v: Value| classify(StatusCode::from_u16(s).unwrap(), v).unwrap_err();
        assert_eq!(
            c(403, json!({"error": NO_LICENCE})),
            ApiError::LicenceMissing
        );
        assert_eq!(
            c(403, json!({"error": NO_PROJECT_ROLES})),
            ApiError::ProjectRolesNotLicensed
        );
        assert_eq!(
            c(
                403,
                json!({"message": "Invalid API key. Organization-scoped API key required for this operation."})
            ),
            ApiError::NotOrgKey
        );
        assert_eq!(c(401, Value::Null), ApiError::Unauthorized);
        assert_eq!(
            c(404, json!({"error": "User not found"})),
            ApiError::Refused {
                status: 404,
                message: "User not found".into()
            }
        );
        assert!(ApiError::LicenceMissing
            .to_string()
            .contains("Enterprise licence"));
    }
}
