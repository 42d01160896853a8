//! The binary as an operator meets it: `check` names the bad key and exits non-zero, `keys
//! generate` writes a usable key, and the README's example config serves discovery, JWKS, the
//! login page and SP metadata.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sso-bridge");

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("LANGFUSE_CLIENT_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/sso-bridge.example.toml")
        .display()
        .to_string()
}

#[test]
fn check_accepts_the_example_and_warns() {
    let (code, stdout, stderr) = run(
        &["check", "--config", &example()],
        &[("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok:"));
    assert!(stderr.contains("warning: public_url"), "{stderr}");
}

#[test]
fn check_names_the_bad_key_and_fails() {
    // Missing environment variable: the key and the variable are named.
    let (code, _, stderr) = run(&["check", "--config", &example()], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("clients[0].secret") && stderr.contains("LANGFUSE_CLIENT_SECRET"),
        "{stderr}"
    );

    // A misspelt key.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("clock_skew_secs = 120", "clock_skew_sec = 120");
    let idp = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-idp-metadata.xml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("example-idp-metadata.xml"), idp).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let (code, _, stderr) = run(
        &["check", "--config", cfg.to_str().unwrap()],
        &[("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("clock_skew_sec"), "{stderr}");

    // A trailing slash on the issuer.
    let text = std::fs::read_to_string(example()).unwrap().replace(
        "public_url = \"http://127.0.0.1:8080\"",
        "public_url = \"http://127.0.0.1:8080/\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, _, stderr) = run(
        &["check", "--config", cfg.to_str().unwrap()],
        &[("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("public_url"), "{stderr}");
}

#[test]
fn keys_generate_writes_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.pem");
    let (code, _, stderr) = run(&["keys", "generate", "--out", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    let pem = std::fs::read(&out).unwrap();
    sso_bridge::oidc::provider::keys::SigningKey::from_pem(&pem).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, _, _) = run(&["keys", "generate", "--out", out.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "never overwrites a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_config_serves_discovery_jwks_login_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::servers::free_port();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("../keys/example-signing.pem", "keys/signing.pem");
    std::fs::write(dir.path().join("c.toml"), text).unwrap();
    std::fs::copy(
        root.join("config/example-idp-metadata.xml"),
        dir.path().join("example-idp-metadata.xml"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("c.toml"))
        .env("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::browser();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "bridge did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let disc: serde_json::Value = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disc["issuer"], base.as_str());
    let jwks: serde_json::Value = client
        .get(format!("{base}/oidc/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let md = client
        .get(format!("{base}/saml/acme-okta/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(md.status(), 200);
    // The login page is reached through authorize.
    let (_, challenge) = common::pkce();
    let resp = client
        .get(format!(
            "{base}/oidc/authorize?client_id=langfuse&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fapi%2Fauth%2Fcallback%2Fcustom&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let page = client
        .get(format!("{base}{}", common::location(&resp)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"email\""));
    assert!(
        dir.path().join("keys/signing.pem").exists(),
        "generate_if_missing created the key"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown on SIGTERM: {status:?}");
}

#[test]
fn explain_prints_the_rule_behind_each_role() {
    let env = [("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")];
    let (code, out, err) = run(
        &[
            "explain",
            "--config",
            &example(),
            "--email",
            "Ana@ACME.example",
            "--groups",
            "ml-engineers,prod-oncall",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("decision: ALLOWED"), "{out}");
    assert!(
        out.contains("organization acme: MEMBER (rule \"ml engineers\")"),
        "{out}"
    );
    assert!(out.contains("project production: VIEWER"), "{out}");
    assert!(out.contains("capped by rule \"ml engineers\""), "{out}");

    let (_, out, _) = run(
        &[
            "explain",
            "--config",
            &example(),
            "--email",
            "ana@acme.example",
            "--groups",
            "nothing-useful",
            "--json",
        ],
        &env,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["decision"]["denial"]["reason"], "no_matching_rule");

    // An address the connection may not assert is denied by the domain guard.
    let (_, out, _) = run(
        &[
            "explain",
            "--config",
            &example(),
            "--email",
            "eve@evil.example",
            "--groups",
            "langfuse-admins",
            "--connection",
            "acme-okta",
        ],
        &env,
    );
    assert!(out.contains("DENIED — domain guard"), "{out}");
}

#[test]
fn langfuse_env_matches_the_config_without_printing_secrets() {
    let env = [("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")];
    let (code, out, err) = run(&["langfuse-env", "--config", &example()], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("AUTH_CUSTOM_CLIENT_ID=langfuse\n"));
    assert!(out.contains("AUTH_CUSTOM_CLIENT_SECRET=${LANGFUSE_CLIENT_SECRET}\n"));
    assert!(out.contains("AUTH_CUSTOM_ISSUER=http://127.0.0.1:8080\n"));
    assert!(out.contains("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT=acme.example\n"));
    assert!(out.contains("AUTH_CUSTOM_CLIENT_AUTH_METHOD=client_secret_basic\n"));
    assert!(
        !out.contains("dev-only-secret-change-me"),
        "the secret is never printed"
    );
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("AUTH_"),
            "every value line is an AUTH_ variable: {line}"
        );
    }
}

#[test]
fn check_strict_fails_on_warnings() {
    let env = [("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")];
    let (code, _, err) = run(&["check", "--config", &example(), "--strict"], &env);
    assert_eq!(code, 2, "{err}");
}

/// Logs go to stderr, which in production is a file or a log shipper, never a terminal: no ANSI
/// colour escapes in it (they garble every shipped line).
#[test]
fn logs_to_a_non_terminal_carry_no_ansi_escapes() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let idp = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-idp-metadata.xml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("example-idp-metadata.xml"), idp).unwrap();
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace(
            "listen = \"127.0.0.1:8080\"",
            &format!("listen = \"{}\"", busy.local_addr().unwrap()),
        )
        .replace("../keys/example-signing.pem", "signing.pem");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let (code, _, stderr) = run(
        &["serve", "--config", cfg.to_str().unwrap()],
        &[("LANGFUSE_CLIENT_SECRET", "dev-only-secret-change-me")],
    );
    assert_eq!(code, 1, "the port is taken: {stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in the log: {stderr:?}"
    );
}
