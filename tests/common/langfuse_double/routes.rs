//! The Langfuse double's route handlers, one group per section of the reference; the shared
//! gate (`admit`) applies auth, entitlements, rate limits and injected faults to every route.

#![allow(clippy::too_many_arguments)]

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use sso_bridge::policy::Role;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------------
// Request handling shared by every route: log, faults, auth, entitlements.

/// Which error body shape a route uses [ref §0 "Error bodies are …"].
#[derive(Clone, Copy)]
enum Shape {
    /// `{error, details?}`: membership and organization routes.
    Error,
    /// `{message}`: project routes.
    Message,
    /// SCIM error object.
    Scim,
}

fn err(shape: Shape, status: u16, text: &str) -> (u16, Value) {
    let body = match shape {
        Shape::Error => json!({ "error": text }),
        Shape::Message => json!({ "message": text }),
        Shape::Scim => json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": text,
            "status": status.to_string(),
        }),
    };
    (status, body)
}

struct Ctx {
    org: String,
}

/// What a route needs before its own logic runs.
struct Gate {
    shape: Shape,
    rate_limited: bool,
    project_roles: bool,
}

/// Runs the common checks; `Err` is the response to send.
#[allow(clippy::result_large_err)]
fn admit(w: &mut World, headers: &HeaderMap, path: &str, gate: Gate) -> Result<Ctx, Response> {
    if let Some(i) = w.faults.iter().position(|(p, _)| path.starts_with(p)) {
        let (_, fault) = w.faults[i].clone();
        match fault {
            // [ref §0] rate limiting applies on the public-api bucket routes only.
            Fault::RateLimited { retry_after_secs } if gate.rate_limited => {
                w.faults.remove(i);
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"error": "Rate limit exceeded"})),
                )
                    .into_response();
                r.headers_mut()
                    .insert("retry-after", retry_after_secs.to_string().parse().unwrap());
                return Err(r);
            }
            Fault::RateLimited { .. } => {}
            Fault::Status(s) => {
                w.faults.remove(i);
                return Err(reply(s, json!({"error": "injected"})));
            }
        }
    }
    // [ref §0] org key via HTTP Basic; 401 when missing or invalid; bearer never for org keys.
    let creds = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((pk, sk)) = creds.as_deref().and_then(|c| c.split_once(':')) else {
        let (s, b) = err(
            gate.shape,
            401,
            "Unauthorized: invalid authorization header",
        );
        return Err(reply(s, b));
    };
    let Some((_, _, scope)) = w.keys.iter().find(|(p, s, _)| p == pk && s == sk) else {
        let (s, b) = err(gate.shape, 401, "Unauthorized: invalid API key");
        return Err(reply(s, b));
    };
    let org = match scope.clone() {
        KeyScope::Organization(o) => o,
        // [ref §0] a project key where an org key is needed: 403, in the route's error shape.
        KeyScope::Project(_) => {
            let (s, b) = err(gate.shape, 403, ORG_KEY_REQUIRED);
            return Err(reply(s, b));
        }
    };
    // [ref §0] admin-api gate: Enterprise only; the entitlement 403 is always `{error}`.
    if !w.plan.admin_api {
        return Err(reply(403, json!({ "error": NO_LICENCE })));
    }
    // [ref §2.2] project membership routes also need rbac-project-roles.
    if gate.project_roles && !w.plan.project_roles {
        return Err(reply(403, json!({ "error": NO_PROJECT_ROLES })));
    }
    Ok(Ctx { org })
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

fn finish(
    w: &mut World,
    method: &Method,
    uri: &Uri,
    body: Option<Value>,
    resp: Response,
) -> Response {
    w.log.push(Logged {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        body,
        status: resp.status().as_u16(),
    });
    resp
}

/// Wraps a route: parse body, admit, run, log.
fn handle(
    world: &Arc<Mutex<World>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    gate: Gate,
    run: impl FnOnce(&mut World, &Ctx, Option<&Value>) -> (u16, Value),
) -> Response {
    let mut w = world.lock().unwrap();
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let shape = gate.shape;
    let resp = match admit(&mut w, &headers, uri.path(), gate) {
        Err(r) => r,
        Ok(ctx) => {
            if !body.is_empty() && parsed.is_none() {
                let (s, b) = err(shape, 400, "Invalid JSON body");
                reply(s, b)
            } else {
                let (s, b) = run(&mut w, &ctx, parsed.as_ref());
                if s == 204 {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    reply(s, b)
                }
            }
        }
    };
    finish(&mut w, &method, &uri, parsed, resp)
}

fn membership_json(w: &World, user_id: &str, role: Role) -> Value {
    let u = w.user(user_id);
    json!({
        "userId": user_id,
        "role": role,
        "email": u.map(|u| u.email.clone()),
        "name": u.and_then(|u| u.name.clone()),
    })
}

/// `{userId, role}` with the full Prisma enum: NONE accepted [ref §1, §2.1, §5].
fn membership_body(body: Option<&Value>) -> Result<(String, Role), (u16, Value)> {
    let b = body.ok_or_else(|| err(Shape::Error, 400, "Invalid request body"))?;
    let user = b["userId"].as_str().filter(|s| !s.is_empty());
    let role = b["role"]
        .as_str()
        .and_then(|r| Role::ALL.into_iter().find(|x| x.as_str() == r));
    match (user, role) {
        (Some(u), Some(r)) => Ok((u.to_owned(), r)),
        _ => Err((
            400,
            json!({"error": "Invalid request body", "details": [{"path": ["role"], "message": "Invalid enum value"}]}),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// [ref §2.1] Organization memberships.

const ORG_GATE: Gate = Gate {
    shape: Shape::Error,
    rate_limited: true,
    project_roles: false,
};

pub(super) async fn org_members_get(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&world, method, uri, headers, body, ORG_GATE, |w, ctx, _| {
        let members: Vec<Value> = w
            .org_members
            .get(&ctx.org)
            .map(|m| m.iter().map(|(u, r)| membership_json(w, u, *r)).collect())
            .unwrap_or_default();
        (200, json!({ "memberships": members }))
    })
}

pub(super) async fn org_members_put(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&world, method, uri, headers, body, ORG_GATE, |w, ctx, b| {
        let (user, role) = match membership_body(b) {
            Ok(x) => x,
            Err(e) => return e,
        };
        // [ref §2.1] 404 `User not found` when no Langfuse user has that id.
        if w.user(&user).is_none() {
            return err(Shape::Error, 404, "User not found");
        }
        // [ref §2.1] upsert; no last-OWNER protection, no role-ceiling check.
        w.org_members
            .entry(ctx.org.clone())
            .or_default()
            .insert(user.clone(), role);
        (200, membership_json(w, &user, role))
    })
}

pub(super) async fn org_members_delete(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&world, method, uri, headers, body, ORG_GATE, |w, ctx, b| {
        let Some(user) = b.and_then(|b| b["userId"].as_str()).map(str::to_owned) else {
            return err(Shape::Error, 400, "Invalid request body");
        };
        // [ref §2.1] idempotent; cascades the user's project memberships in that org.
        remove_member(w, &ctx.org, &user);
        (
            200,
            json!({"message": "Membership deleted successfully", "userId": user}),
        )
    })
}

fn remove_member(w: &mut World, org: &str, user: &str) {
    if let Some(m) = w.org_members.get_mut(org) {
        m.remove(user);
    }
    for p in w.projects.iter_mut().filter(|p| p.org == org) {
        p.memberships.remove(user);
    }
}

// [ref §2.3] Organization projects (read-only), non-deleted only.
pub(super) async fn org_projects(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&world, method, uri, headers, body, ORG_GATE, |w, ctx, _| {
        let projects: Vec<Value> = w
            .projects
            .iter()
            .filter(|p| p.org == ctx.org && !p.deleted)
            .map(|p| json!({"id": p.id, "name": p.name, "metadata": {}, "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"}))
            .collect();
        (200, json!({ "projects": projects }))
    })
}

// [ref §2.4] DELETE /projects/{id}: 202, soft delete now, hard delete queued (async).
pub(super) async fn project_delete(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gate = Gate {
        shape: Shape::Message,
        rate_limited: false,
        project_roles: false,
    };
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        gate,
        |w, ctx, _| match w
            .projects
            .iter_mut()
            .find(|p| p.id == id && p.org == ctx.org && !p.deleted)
        {
            Some(p) => {
                p.deleted = true;
                (
                    202,
                    json!({"success": true, "message": "Project deletion has been queued"}),
                )
            }
            None => err(Shape::Message, 404, "Project not found"),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// [ref §2.2] Project memberships: admin-api + rbac-project-roles; project in the key's org and
// not soft-deleted (else 404); not rate limited [ref §0].

const PROJECT_GATE: Gate = Gate {
    shape: Shape::Error,
    rate_limited: false,
    project_roles: true,
};

fn live_project<'a>(w: &'a mut World, org: &str, id: &str) -> Option<&'a mut Project> {
    w.projects
        .iter_mut()
        .find(|p| p.id == id && p.org == org && !p.deleted)
}

pub(super) async fn project_members_get(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        PROJECT_GATE,
        |w, ctx, _| {
            let Some(p) = live_project(w, &ctx.org, &id) else {
                return err(Shape::Error, 404, "Project not found");
            };
            // Only explicit overrides, not users inheriting the org role.
            let rows: Vec<(String, Role)> =
                p.memberships.iter().map(|(u, r)| (u.clone(), *r)).collect();
            let members: Vec<Value> = rows
                .iter()
                .map(|(u, r)| membership_json(w, u, *r))
                .collect();
            (200, json!({ "memberships": members }))
        },
    )
}

pub(super) async fn project_members_put(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        PROJECT_GATE,
        |w, ctx, b| {
            let (user, role) = match membership_body(b) {
                Ok(x) => x,
                Err(e) => return e,
            };
            if live_project(w, &ctx.org, &id).is_none() {
                return err(Shape::Error, 404, "Project not found");
            }
            // [ref §2.2] the org membership must exist first.
            let is_member = w
                .org_members
                .get(&ctx.org)
                .is_some_and(|m| m.contains_key(&user));
            if !is_member {
                return err(
                    Shape::Error,
                    404,
                    "User is not a member of this organization",
                );
            }
            // [ref §2.2] upsert; NONE stores an explicit override.
            if let Some(p) = live_project(w, &ctx.org, &id) {
                p.memberships.insert(user.clone(), role);
            }
            (200, membership_json(w, &user, role))
        },
    )
}

pub(super) async fn project_members_delete(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        PROJECT_GATE,
        |w, ctx, b| {
            let Some(user) = b.and_then(|b| b["userId"].as_str()).map(str::to_owned) else {
                return err(Shape::Error, 400, "Invalid request body");
            };
            let Some(p) = live_project(w, &ctx.org, &id) else {
                return err(Shape::Error, 404, "Project not found");
            };
            // [ref §2.2] 404 when there is no override to remove.
            if p.memberships.remove(&user).is_none() {
                return err(Shape::Error, 404, "Project membership not found");
            }
            (
                200,
                json!({"message": "Project membership deleted successfully", "userId": user}),
            )
        },
    )
}

// ---------------------------------------------------------------------------------------------
// [ref §3] SCIM Users: org key via Basic, admin-api, not rate limited, SCIM error objects.

const SCIM_GATE: Gate = Gate {
    shape: Shape::Scim,
    rate_limited: false,
    project_roles: false,
};

fn scim_user(u: &User) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": u.id,
        "userName": u.email,
        "name": {"formatted": u.name},
        "emails": [{"primary": true, "value": u.email, "type": "work"}],
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00.000Z", "lastModified": "2026-01-01T00:00:00.000Z"},
    })
}

fn is_member(w: &World, org: &str, user: &str) -> bool {
    w.org_members.get(org).is_some_and(|m| m.contains_key(user))
}

pub(super) async fn scim_list(
    State(world): State<Arc<Mutex<World>>>,
    Query(q): Query<BTreeMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        SCIM_GATE,
        |w, ctx, _| {
            // [ref §3] only `userName eq "<email>"` is understood, case-insensitive (value
            // lowercased); other filters are ignored and the whole list is returned.
            let re = regex::Regex::new(r#"^\s*userName\s+eq\s+"([^"]*)"\s*$"#).unwrap();
            let wanted = q
                .get("filter")
                .and_then(|f| re.captures(f))
                .map(|c| c[1].to_lowercase());
            // Only members of the key's org, any role including NONE.
            let all: Vec<&User> = w
                .users
                .iter()
                .filter(|u| is_member(w, &ctx.org, &u.id))
                .filter(|u| wanted.as_ref().is_none_or(|e| &u.email == e))
                .collect();
            // [ref §3] startIndex 1-based (default 1), count default 100.
            let start: usize = q
                .get("startIndex")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1)
                .max(1);
            let count: usize = q.get("count").and_then(|s| s.parse().ok()).unwrap_or(100);
            let page: Vec<Value> = all
                .iter()
                .skip(start - 1)
                .take(count)
                .map(|u| scim_user(u))
                .collect();
            (
                200,
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": all.len(),
                    "startIndex": start,
                    "itemsPerPage": page.len(),
                    "Resources": page,
                }),
            )
        },
    )
}

pub(super) async fn scim_create(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        SCIM_GATE,
        |w, ctx, b| {
            let Some(b) = b else {
                return err(Shape::Scim, 400, "Invalid request body");
            };
            // [ref §3] userName required.
            let Some(user_name) = b["userName"].as_str().filter(|s| !s.is_empty()) else {
                return err(Shape::Scim, 400, "userName is required");
            };
            // [ref §3] roles: any of the five, first one used; else NONE.
            let role = match b["roles"].as_array().and_then(|r| r.first()) {
                None => Role::None,
                Some(v) => match v
                    .as_str()
                    .and_then(|r| Role::ALL.into_iter().find(|x| x.as_str() == r))
                {
                    Some(r) => r,
                    None => return err(Shape::Scim, 400, "Invalid roles"),
                },
            };
            let email = user_name.to_lowercase();
            // [ref §3] an email that exists globally reuses that user unchanged.
            let existing = w
                .users
                .iter()
                .find(|u| u.email == email)
                .map(|u| u.id.clone());
            let id = match existing {
                Some(id) => {
                    // [ref §3] 409 if already a member of this org.
                    if is_member(w, &ctx.org, &id) {
                        return err(Shape::Scim, 409, "User already exists in this organization");
                    }
                    id
                }
                None => {
                    let id = w.id("user-");
                    let name = b["name"]["formatted"]
                        .as_str()
                        .or(b["displayName"].as_str())
                        .map(str::to_owned);
                    w.users.push(User {
                        id: id.clone(),
                        email: email.clone(),
                        name,
                    });
                    id
                }
            };
            w.org_members
                .entry(ctx.org.clone())
                .or_default()
                .insert(id.clone(), role);
            let u = w.user(&id).cloned().unwrap();
            (201, scim_user(&u))
        },
    )
}

pub(super) async fn scim_get(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        SCIM_GATE,
        |w, ctx, _| {
            // [ref §3] 404 if unknown or not a member of this org.
            match w.user(&id).filter(|_| is_member(w, &ctx.org, &id)) {
                Some(u) => (200, scim_user(u)),
                None => err(Shape::Scim, 404, "User not found"),
            }
        },
    )
}

/// [ref §3] SCIM changes that remove or demote the last OWNER are refused with 403.
fn last_owner_guard(
    w: &World,
    org: &str,
    user: &str,
    new_role: Option<Role>,
) -> Option<(u16, Value)> {
    let m = w.org_members.get(org)?;
    let is_owner = m.get(user) == Some(&Role::Owner);
    let owners = m.values().filter(|r| **r == Role::Owner).count();
    (is_owner && owners <= 1 && new_role != Some(Role::Owner)).then(|| {
        err(
            Shape::Scim,
            403,
            &format!("{LAST_OWNER} Assign another owner first."),
        )
    })
}

pub(super) async fn scim_put(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        SCIM_GATE,
        |w, ctx, b| {
            if w.user(&id).is_none() {
                return err(Shape::Scim, 404, "User not found");
            }
            let b = b.cloned().unwrap_or(Value::Null);
            let active = b["active"].as_bool().unwrap_or(true);
            let role = b["roles"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|v| v.as_str())
                .and_then(|r| Role::ALL.into_iter().find(|x| x.as_str() == r));
            if !active {
                if let Some(e) = last_owner_guard(w, &ctx.org, &id, None) {
                    return e;
                }
                remove_member(w, &ctx.org, &id);
            } else {
                if let Some(r) = role {
                    if let Some(e) = last_owner_guard(w, &ctx.org, &id, Some(r)) {
                        return e;
                    }
                }
                let m = w.org_members.entry(ctx.org.clone()).or_default();
                match role {
                    Some(r) => {
                        m.insert(id.clone(), r);
                    }
                    None => {
                        m.entry(id.clone()).or_insert(Role::None);
                    }
                }
            }
            let email = w.user(&id).map(|u| u.email.clone());
            (
                200,
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": email, "meta": {"resourceType": "User"}}),
            )
        },
    )
}

pub(super) async fn scim_delete(
    State(world): State<Arc<Mutex<World>>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &world,
        method,
        uri,
        headers,
        body,
        SCIM_GATE,
        |w, ctx, _| {
            // [ref §3] removes the org membership only; idempotent; last OWNER → 403.
            if let Some(e) = last_owner_guard(w, &ctx.org, &id, None) {
                return e;
            }
            remove_member(w, &ctx.org, &id);
            (204, Value::Null)
        },
    )
}
