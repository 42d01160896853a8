//! Real servers the tests start on free loopback ports: redis-server, SimpleSAMLphp (php -S)
//! and the openid-client relying party (node). Each runs in its own process group and is
//! stopped, group and all, when its guard drops.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bound listener that holds a port until the process meant to listen there starts: dropped
/// just before that, so no other `free_port` or outgoing connection takes the port meanwhile.
pub fn reserve_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A child process group, terminated on drop.
pub struct Guard {
    child: Child,
    name: &'static str,
}

impl Guard {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Guard {
        let child = cmd.process_group(0).spawn().unwrap_or_else(|e| {
            panic!("cannot start {name}: {e} (run .ci/run or scripts/test.sh to install it)")
        });
        Guard { child, name }
    }
}

impl Guard {
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &pgid]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
        let _ = self.child.wait();
        eprintln!("{} needed SIGKILL", self.name);
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not become ready within {timeout:?}");
}

pub struct Redis {
    pub url: String,
    _guard: Guard,
    _dir: tempfile::TempDir,
}

/// A private redis-server with no persistence.
pub fn redis() -> Redis {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let guard = Guard::spawn(
        "redis-server",
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let url = format!("redis://127.0.0.1:{port}/");
    wait_until("redis-server", Duration::from_secs(10), || {
        redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    });
    Redis {
        url,
        _guard: guard,
        _dir: dir,
    }
}

pub struct SimpleSamlPhp {
    pub base: String,
    pub dir: tempfile::TempDir,
    _guard: Guard,
}

impl SimpleSamlPhp {
    pub fn metadata_xml(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("idp-metadata.xml")).unwrap()
    }
}

/// SimpleSAMLphp (Debian package) configured by tests/support/simplesamlphp/prepare.py for one SP.
pub fn simplesamlphp(
    sp_entity_id: &str,
    acs_url: &str,
    sign_response: bool,
    sign_assertion: bool,
) -> SimpleSamlPhp {
    simplesamlphp_with(
        sp_entity_id,
        acs_url,
        &SspOptions {
            sign_response,
            sign_assertion,
            ..SspOptions::default()
        },
    )
}

/// What prepare.py is told beyond the SP's identity.
#[derive(Default)]
pub struct SspOptions {
    pub sign_response: bool,
    pub sign_assertion: bool,
    /// The SP certificate (PEM) for saml20-sp-remote: verifies AuthnRequests, encrypts to.
    pub sp_cert_pem: Option<String>,
    pub validate_authnrequest: bool,
    pub encrypt: bool,
}

pub fn simplesamlphp_with(sp_entity_id: &str, acs_url: &str, o: &SspOptions) -> SimpleSamlPhp {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("tests/support/simplesamlphp/prepare.py"))
        .args(["--dir"])
        .arg(dir.path())
        .args([
            "--port",
            &port.to_string(),
            "--sp-entity-id",
            sp_entity_id,
            "--acs-url",
            acs_url,
        ])
        .args([
            "--sign-response",
            yn(o.sign_response),
            "--sign-assertion",
            yn(o.sign_assertion),
            "--validate-authnrequest",
            yn(o.validate_authnrequest),
            "--encrypt",
            yn(o.encrypt),
            "--quiet",
        ]);
    if let Some(pem) = &o.sp_cert_pem {
        let path = dir.path().join("sp-cert.pem");
        std::fs::write(&path, pem).unwrap();
        cmd.arg("--sp-cert").arg(path);
    }
    let status = cmd.status().expect("python3");
    assert!(status.success(), "prepare.py failed");
    let guard = Guard::spawn(
        "php -S (SimpleSAMLphp)",
        Command::new("php")
            .args([
                "-S",
                &format!("127.0.0.1:{port}"),
                "-t",
                "/usr/share/simplesamlphp/www",
            ])
            .env("SIMPLESAMLPHP_CONFIG_DIR", dir.path().join("config"))
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let base = format!("http://127.0.0.1:{port}");
    let probe = format!("{base}/saml2/idp/metadata.php");
    wait_until("SimpleSAMLphp", Duration::from_secs(15), || {
        probe::http_ok(&probe)
    });
    SimpleSamlPhp {
        base,
        dir,
        _guard: guard,
    }
}

pub struct NodeRp {
    pub base: String,
    _guard: Guard,
}

/// The openid-client v5 relying party playing Langfuse (tests/support/rp) on `port`.
pub fn node_rp_on(issuer: &str, auth_method: &str, nonce: bool, secret: &str, port: u16) -> NodeRp {
    node_rp_named(issuer, auth_method, nonce, secret, port, "127.0.0.1")
}

/// Like `node_rp_on`, with `host` (`127.0.0.1` or `localhost`) in the RP's own URLs.
pub fn node_rp_named(
    issuer: &str,
    auth_method: &str,
    nonce: bool,
    secret: &str,
    port: u16,
    host: &str,
) -> NodeRp {
    let rp_dir = repo_root().join("tests/support/rp");
    assert!(
        rp_dir.join("node_modules/openid-client").exists(),
        "run `npm ci --prefix tests/support/rp` first (scripts/test.sh does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(rp_dir.join("rp.js"))
        .args([
            "--issuer",
            issuer,
            "--client-id",
            super::CLIENT_ID,
            "--client-secret",
            secret,
        ])
        .args([
            "--auth-method",
            auth_method,
            "--nonce",
            if nonce { "yes" } else { "no" },
        ])
        .args(["--port", &port.to_string(), "--public-host", host])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut guard = Guard::spawn("node rp.js", &mut cmd);
    let stdout = guard.child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("rp.js did not start: {line:?}"))
        .to_owned();
    NodeRp {
        base,
        _guard: guard,
    }
}

/// Runs tests/support/chromium/login.js (Debian's headless Chromium through playwright-core)
/// to its end and returns the JSON line it prints. Blocking: call it from `spawn_blocking`.
pub fn chromium_login(args: &[String], timeout: Duration) -> serde_json::Value {
    let dir = repo_root().join("tests/support/chromium");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/support/chromium` first (scripts/test.sh does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "install Debian's chromium package first (scripts/install-deps.sh does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("login.js"))
        .args(args)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Its own process group: Chromium and its helpers go when the guard drops.
    let mut guard = Guard::spawn("node login.js (chromium)", &mut cmd);
    let mut stdout = guard.take_stdout().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        let _ = tx.send(out);
    });
    let out = rx
        .recv_timeout(timeout)
        .unwrap_or_else(|_| panic!("login.js gave no answer within {timeout:?}"));
    drop(guard);
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("login.js printed {out:?}: {e}"))
}

/// Minimal blocking GET used only while waiting for servers to come up.
mod probe {
    pub fn http_ok(url: &str) -> bool {
        let Ok(u) = url::Url::parse(url) else {
            return false;
        };
        let addr = format!(
            "{}:{}",
            u.host_str().unwrap_or("127.0.0.1"),
            u.port().unwrap_or(80)
        );
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        use std::io::{Read, Write};
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let req = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n",
            u.path(),
            u.host_str().unwrap_or("")
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
    }
}
