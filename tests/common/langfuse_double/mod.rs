//! An in-process double of Langfuse's organization admin API (DESIGN.md §7: Langfuse cannot run
//! here). An axum app on a real loopback socket that enforces the documented rules of
//! `reference/langfuse-admin-api.md` — each rule cites its section as `[ref §n]` — keeps a request
//! log tests assert on, and lets tests inject 429s, 5xx answers and a plan without the licence.
//!
//! Only the routes the bridge uses (and the ones whose rules it must survive) are modelled.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::routing::{delete, get};
use axum::Router;
use serde_json::Value;

use sso_bridge::policy::Role;

mod routes;
use routes::*;

/// [ref §0] "Exact texts worth matching on".
pub const NO_LICENCE: &str = "This feature is not available on your current plan.";
pub const NO_PROJECT_ROLES: &str = "Your plan does not include project role management.";
pub const ORG_KEY_REQUIRED: &str =
    "Invalid API key. Organization-scoped API key required for this operation.";
pub const LAST_OWNER: &str = "Cannot remove the last owner of an organization.";

/// The instance plan's entitlements, from `LANGFUSE_EE_LICENSE_KEY` [ref §0 entitlement gates].
/// The two gates are checked separately in Langfuse's code, so they are separate here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub admin_api: bool,
    pub project_roles: bool,
}

impl Plan {
    /// `self-hosted:enterprise` (`langfuse_ee_` key): both gates.
    pub const ENTERPRISE: Plan = Plan {
        admin_api: true,
        project_roles: true,
    };
    /// `oss` or `self-hosted:pro`: neither gate.
    pub const NO_LICENCE: Plan = Plan {
        admin_api: false,
        project_roles: false,
    };
}

/// A failure the next matching request gets instead of its real answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `Retry-After: secs` — only on rate-limited routes [ref §0 rate limiting].
    RateLimited { retry_after_secs: u64 },
    /// Any status (5xx), body `{"error": "injected"}`.
    Status(u16),
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
    pub status: u16,
}

impl Logged {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub org: String,
    pub deleted: bool,
    pub memberships: BTreeMap<String, Role>,
}

#[derive(Debug, Clone)]
enum KeyScope {
    Organization(String),
    Project(String),
}

pub struct World {
    pub users: Vec<User>,
    /// org id → (user id → role).
    pub org_members: BTreeMap<String, BTreeMap<String, Role>>,
    pub projects: Vec<Project>,
    keys: Vec<(String, String, KeyScope)>,
    plan: Plan,
    faults: VecDeque<(String, Fault)>,
    pub log: Vec<Logged>,
    next_id: u64,
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:04}", self.next_id)
    }
    fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
}

#[derive(Clone)]
pub struct LangfuseDouble {
    pub base: String,
    pub world: Arc<Mutex<World>>,
    _shutdown: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl LangfuseDouble {
    pub async fn start() -> LangfuseDouble {
        let world = Arc::new(Mutex::new(World {
            users: Vec::new(),
            org_members: BTreeMap::new(),
            projects: Vec::new(),
            keys: Vec::new(),
            plan: Plan::ENTERPRISE,
            faults: VecDeque::new(),
            log: Vec::new(),
            next_id: 0,
        }));
        let app = Router::new()
            .route(
                "/api/public/organizations/memberships",
                get(org_members_get)
                    .put(org_members_put)
                    .delete(org_members_delete),
            )
            .route("/api/public/organizations/projects", get(org_projects))
            .route("/api/public/projects/{id}", delete(project_delete))
            .route(
                "/api/public/projects/{id}/memberships",
                get(project_members_get)
                    .put(project_members_put)
                    .delete(project_members_delete),
            )
            .route("/api/public/scim/Users", get(scim_list).post(scim_create))
            .route(
                "/api/public/scim/Users/{id}",
                get(scim_get).put(scim_put).delete(scim_delete),
            )
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        LangfuseDouble {
            base,
            world,
            _shutdown: Arc::new(tx),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// Creates an organization with an org-scope key `pk-lf-<org>` / `sk-lf-<org>` and projects.
    pub fn add_org(&self, org: &str, projects: &[&str]) -> (String, String) {
        let mut w = self.lock();
        let (pk, sk) = (format!("pk-lf-{org}"), format!("sk-lf-{org}"));
        w.keys
            .push((pk.clone(), sk.clone(), KeyScope::Organization(org.into())));
        w.org_members.entry(org.into()).or_default();
        for name in projects {
            let id = w.id("proj-");
            w.projects.push(Project {
                id,
                name: (*name).into(),
                org: org.into(),
                deleted: false,
                memberships: BTreeMap::new(),
            });
        }
        (pk, sk)
    }

    /// A project-scope key for the named project.
    pub fn add_project_key(&self, project: &str) -> (String, String) {
        let id = self.project_id(project);
        let mut w = self.lock();
        let (pk, sk) = (format!("pk-lf-p-{id}"), format!("sk-lf-p-{id}"));
        w.keys
            .push((pk.clone(), sk.clone(), KeyScope::Project(id.clone())));
        (pk, sk)
    }

    pub fn project_id(&self, name: &str) -> String {
        let w = self.lock();
        w.projects
            .iter()
            .find(|p| p.name == name && !p.deleted)
            .map(|p| p.id.clone())
            .unwrap_or_else(|| panic!("no project {name}"))
    }

    /// A Langfuse user (as if signed up or created by SCIM), optionally an org member.
    pub fn add_user(&self, email: &str, member_of: Option<(&str, Role)>) -> String {
        let mut w = self.lock();
        let id = w.id("user-");
        w.users.push(User {
            id: id.clone(),
            email: email.to_lowercase(),
            name: None,
        });
        if let Some((org, role)) = member_of {
            w.org_members
                .entry(org.into())
                .or_default()
                .insert(id.clone(), role);
        }
        id
    }

    pub fn user_id(&self, email: &str) -> Option<String> {
        let w = self.lock();
        w.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id.clone())
    }

    pub fn org_role(&self, org: &str, email: &str) -> Option<Role> {
        let id = self.user_id(email)?;
        self.lock().org_members.get(org)?.get(&id).copied()
    }

    /// The user's explicit project overrides in `org`, by project name.
    pub fn project_roles(&self, org: &str, email: &str) -> BTreeMap<String, Role> {
        let Some(id) = self.user_id(email) else {
            return BTreeMap::new();
        };
        let w = self.lock();
        w.projects
            .iter()
            .filter(|p| p.org == org && !p.deleted)
            .filter_map(|p| p.memberships.get(&id).map(|r| (p.name.clone(), *r)))
            .collect()
    }

    pub fn set_project_role(&self, project: &str, email: &str, role: Role) {
        let pid = self.project_id(project);
        let uid = self.user_id(email).unwrap();
        let mut w = self.lock();
        let p = w.projects.iter_mut().find(|p| p.id == pid).unwrap();
        p.memberships.insert(uid, role);
    }

    pub fn set_plan(&self, plan: Plan) {
        self.lock().plan = plan;
    }

    /// The next request whose path starts with `path_prefix` gets `fault` (queued in order).
    pub fn inject(&self, path_prefix: &str, fault: Fault) {
        self.lock().faults.push_back((path_prefix.into(), fault));
    }

    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    pub fn writes(&self) -> Vec<Logged> {
        self.log().into_iter().filter(Logged::is_write).collect()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }
}
