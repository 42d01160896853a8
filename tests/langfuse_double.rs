//! The Langfuse admin API double keeps the documented rules of
//! `reference/langfuse-admin-api.md`: these tests pin each one, so the provisioning tests that
//! run against the double test against Langfuse's contract, not against a convenient fake.

mod common;

use base64::Engine;
use common::langfuse_double::{
    Fault, LangfuseDouble, Plan, LAST_OWNER, NO_LICENCE, NO_PROJECT_ROLES, ORG_KEY_REQUIRED,
};
use serde_json::{json, Value};
use sso_bridge::policy::Role;

struct Api {
    base: String,
    auth: String,
    http: reqwest::Client,
}

impl Api {
    fn new(lf: &LangfuseDouble, pk: &str, sk: &str) -> Api {
        Api {
            base: lf.base.clone(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{pk}:{sk}"))
            ),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value, String) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body, retry_after)
    }
}

async fn setup() -> (LangfuseDouble, Api) {
    let lf = LangfuseDouble::start().await;
    let (pk, sk) = lf.add_org("org-acme", &["production", "staging"]);
    let api = Api::new(&lf, &pk, &sk);
    (lf, api)
}

#[tokio::test]
async fn basic_auth_with_an_org_key_only() {
    let (lf, api) = setup().await;
    let (s, _, _) = api
        .call("GET", "/api/public/organizations/memberships", None)
        .await;
    assert_eq!(s, 200);

    let wrong = Api::new(&lf, "pk-lf-org-acme", "sk-lf-wrong");
    let (s, _, _) = wrong
        .call("GET", "/api/public/organizations/memberships", None)
        .await;
    assert_eq!(s, 401);

    // A project key is refused with the exact text, in each route's error shape.
    let (pk, sk) = lf.add_project_key("production");
    let project = Api::new(&lf, &pk, &sk);
    let (s, b, _) = project
        .call("GET", "/api/public/organizations/memberships", None)
        .await;
    assert_eq!((s, b["error"].as_str()), (403, Some(ORG_KEY_REQUIRED)));
    let (s, b, _) = project.call("GET", "/api/public/scim/Users", None).await;
    assert_eq!((s, b["detail"].as_str()), (403, Some(ORG_KEY_REQUIRED)));
    let pid = lf.project_id("production");
    let (s, b, _) = project
        .call("DELETE", &format!("/api/public/projects/{pid}"), None)
        .await;
    assert_eq!((s, b["message"].as_str()), (403, Some(ORG_KEY_REQUIRED)));
}

#[tokio::test]
async fn licence_gates_answer_with_the_exact_texts() {
    let (lf, api) = setup().await;
    lf.set_plan(Plan::NO_LICENCE);
    for path in [
        "/api/public/organizations/memberships",
        "/api/public/organizations/projects",
        "/api/public/scim/Users",
    ] {
        let (s, b, _) = api.call("GET", path, None).await;
        assert_eq!(s, 403, "{path}");
        assert_eq!(b, json!({ "error": NO_LICENCE }), "{path}");
    }
    lf.set_plan(Plan {
        admin_api: true,
        project_roles: false,
    });
    let pid = lf.project_id("production");
    let (s, b, _) = api
        .call(
            "GET",
            &format!("/api/public/projects/{pid}/memberships"),
            None,
        )
        .await;
    assert_eq!((s, b), (403, json!({ "error": NO_PROJECT_ROLES })));
}

#[tokio::test]
async fn org_membership_put_needs_a_known_user_and_accepts_none() {
    let (lf, api) = setup().await;
    let (s, b, _) = api
        .call(
            "PUT",
            "/api/public/organizations/memberships",
            Some(json!({"userId": "nobody", "role": "MEMBER"})),
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (404, Some("User not found")));

    let id = lf.add_user("ana@acme.test", None);
    let (s, b, _) = api
        .call(
            "PUT",
            "/api/public/organizations/memberships",
            Some(json!({"userId": id, "role": "NONE"})),
        )
        .await;
    assert_eq!((s, b["role"].as_str()), (200, Some("NONE")));
    assert_eq!(lf.org_role("org-acme", "ana@acme.test"), Some(Role::None));
    let (s, _, _) = api
        .call(
            "PUT",
            "/api/public/organizations/memberships",
            Some(json!({"userId": id, "role": "GOD"})),
        )
        .await;
    assert_eq!(s, 400);
    // No last-owner protection on this route.
    api.call(
        "PUT",
        "/api/public/organizations/memberships",
        Some(json!({"userId": id, "role": "OWNER"})),
    )
    .await;
    let (s, _, _) = api
        .call(
            "PUT",
            "/api/public/organizations/memberships",
            Some(json!({"userId": id, "role": "VIEWER"})),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn project_membership_requires_org_membership_and_delete_needs_a_row() {
    let (lf, api) = setup().await;
    let pid = lf.project_id("production");
    let path = format!("/api/public/projects/{pid}/memberships");
    let id = lf.add_user("ana@acme.test", None);
    let (s, b, _) = api
        .call("PUT", &path, Some(json!({"userId": id, "role": "MEMBER"})))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (404, Some("User is not a member of this organization"))
    );
    lf.add_user("bob@acme.test", Some(("org-acme", Role::None)));
    let bob = lf.user_id("bob@acme.test").unwrap();
    let (s, _, _) = api
        .call("PUT", &path, Some(json!({"userId": bob, "role": "NONE"})))
        .await;
    assert_eq!(s, 200, "NONE is an explicit override");
    let (_, b, _) = api.call("GET", &path, None).await;
    assert_eq!(b["memberships"][0]["role"], "NONE");
    let (s, _, _) = api
        .call("DELETE", &path, Some(json!({"userId": bob})))
        .await;
    assert_eq!(s, 200);
    let (s, b, _) = api
        .call("DELETE", &path, Some(json!({"userId": bob})))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (404, Some("Project membership not found"))
    );
    let (s, _, _) = api
        .call("GET", "/api/public/projects/proj-unknown/memberships", None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn org_membership_delete_cascades_project_rows() {
    let (lf, api) = setup().await;
    let id = lf.add_user("bob@acme.test", Some(("org-acme", Role::Viewer)));
    lf.set_project_role("production", "bob@acme.test", Role::Member);
    let (s, _, _) = api
        .call(
            "DELETE",
            "/api/public/organizations/memberships",
            Some(json!({"userId": id})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(lf.project_roles("org-acme", "bob@acme.test").is_empty());
    assert_eq!(lf.org_role("org-acme", "bob@acme.test"), None);
}

#[tokio::test]
async fn scim_create_conflicts_for_members_and_filter_is_case_insensitive() {
    let (lf, api) = setup().await;
    let (s, b, _) = api
        .call(
            "POST",
            "/api/public/scim/Users",
            Some(json!({"userName": "Carol.Diaz@Example.com", "roles": ["VIEWER"]})),
        )
        .await;
    assert_eq!(s, 201);
    let id = b["id"].as_str().unwrap().to_owned();
    assert_eq!(
        b["userName"], "carol.diaz@example.com",
        "Langfuse lowercases on create"
    );
    assert_eq!(
        lf.org_role("org-acme", "carol.diaz@example.com"),
        Some(Role::Viewer)
    );

    let (s, b, _) = api
        .call(
            "POST",
            "/api/public/scim/Users",
            Some(json!({"userName": "CAROL.DIAZ@example.com"})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        b["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );

    let q = "/api/public/scim/Users?filter=userName%20eq%20%22carol.diaz%40EXAMPLE.com%22";
    let (s, b, _) = api.call("GET", q, None).await;
    assert_eq!((s, b["totalResults"].as_u64()), (200, Some(1)));
    assert_eq!(b["Resources"][0]["id"], id.as_str());
    let (_, b, _) = api
        .call(
            "GET",
            "/api/public/scim/Users?filter=userName%20eq%20%22nobody%40example.com%22",
            None,
        )
        .await;
    assert_eq!(b["totalResults"], 0);

    // An existing Langfuse user who is not a member is reused, and gets NONE without roles.
    let existing = lf.add_user("dan@example.com", None);
    let (s, b, _) = api
        .call(
            "POST",
            "/api/public/scim/Users",
            Some(json!({"userName": "dan@example.com"})),
        )
        .await;
    assert_eq!((s, b["id"].as_str()), (201, Some(existing.as_str())));
    assert_eq!(lf.org_role("org-acme", "dan@example.com"), Some(Role::None));

    // Only org members are listed; pagination is 1-based.
    lf.add_user("outsider@example.com", None);
    let (_, b, _) = api
        .call("GET", "/api/public/scim/Users?startIndex=2&count=1", None)
        .await;
    assert_eq!(
        (b["totalResults"].as_u64(), b["itemsPerPage"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(b["Resources"][0]["userName"], "dan@example.com");
}

#[tokio::test]
async fn scim_refuses_removing_the_last_owner() {
    let (lf, api) = setup().await;
    let id = lf.add_user("owner@acme.test", Some(("org-acme", Role::Owner)));
    let (s, b, _) = api
        .call("DELETE", &format!("/api/public/scim/Users/{id}"), None)
        .await;
    assert_eq!(s, 403);
    assert!(b["detail"].as_str().unwrap().starts_with(LAST_OWNER));
    let (s, _, _) = api
        .call("PUT", &format!("/api/public/scim/Users/{id}"), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "active": true, "roles": ["ADMIN"]})))
        .await;
    assert_eq!(s, 403);
    lf.add_user("second@acme.test", Some(("org-acme", Role::Owner)));
    let (s, _, _) = api
        .call("DELETE", &format!("/api/public/scim/Users/{id}"), None)
        .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn project_delete_is_async_and_hides_the_project() {
    let (lf, api) = setup().await;
    let pid = lf.project_id("staging");
    let (s, b, _) = api
        .call("DELETE", &format!("/api/public/projects/{pid}"), None)
        .await;
    assert_eq!((s, b["success"].as_bool()), (202, Some(true)));
    let (_, b, _) = api
        .call("GET", "/api/public/organizations/projects", None)
        .await;
    let names: Vec<&str> = b["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["production"]);
    let (s, _, _) = api
        .call(
            "GET",
            &format!("/api/public/projects/{pid}/memberships"),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn injected_rate_limits_and_server_errors_and_the_request_log() {
    let (lf, api) = setup().await;
    // 429 only where Langfuse rate-limits: SCIM is not in the bucket, so the fault waits.
    lf.inject(
        "/api/public/",
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    let (s, _, _) = api.call("GET", "/api/public/scim/Users", None).await;
    assert_eq!(s, 200);
    let (s, _, ra) = api
        .call("GET", "/api/public/organizations/memberships", None)
        .await;
    assert_eq!((s, ra.as_str()), (429, "7"));
    lf.inject("/api/public/organizations/projects", Fault::Status(503));
    let (s, _, _) = api
        .call("GET", "/api/public/organizations/projects", None)
        .await;
    assert_eq!(s, 503);
    let (s, _, _) = api
        .call("GET", "/api/public/organizations/projects", None)
        .await;
    assert_eq!(s, 200);

    let log = lf.log();
    let statuses: Vec<u16> = log.iter().map(|l| l.status).collect();
    assert_eq!(statuses, [200, 429, 503, 200]);
    assert!(lf.writes().is_empty());
    let id = lf.add_user("x@acme.test", None);
    api.call(
        "PUT",
        "/api/public/organizations/memberships",
        Some(json!({"userId": id, "role": "VIEWER"})),
    )
    .await;
    let w = lf.writes();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (
            w[0].method.as_str(),
            w[0].body.as_ref().unwrap()["role"].as_str()
        ),
        ("PUT", Some("VIEWER"))
    );
}
