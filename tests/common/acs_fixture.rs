//! One SAML connection (`acme`, domain acme.test) trusting a fresh test IdP, for tests that call
//! `acs::verify` directly: build a valid response, mutate one thing, assert the refusal.

use std::path::Path;

use super::saml_idp::{ResponseSpec, TestIdp};
use super::{make_config, t0, ConnSpec, REDIRECT_URI};
use sso_bridge::config::{RuntimeConfig, SamlConnection};
use sso_bridge::saml::acs::{self, AcsError, VerifiedAssertion};

pub const PUBLIC: &str = "https://sso.example.com";

pub struct AcsFixture {
    pub idp: TestIdp,
    pub config: RuntimeConfig,
    pub dir: tempfile::TempDir,
}

impl AcsFixture {
    pub fn new() -> Self {
        Self::with("")
    }

    /// With extra `[connections.saml]` lines.
    pub fn with(extra: &str) -> Self {
        Self::with_setup(|_| extra.to_owned())
    }

    /// `setup` may write files (keys) into the config folder and returns the extra
    /// `[connections.saml]` lines that use them.
    pub fn with_setup(setup: impl FnOnce(&Path) -> String) -> Self {
        let idp = TestIdp::new("https://idp.acme.test");
        let dir = tempfile::tempdir().unwrap();
        let extra = setup(dir.path());
        let config = make_config(
            dir.path(),
            PUBLIC,
            None,
            &[REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: idp.metadata(),
                extra: &extra,
            }],
        );
        AcsFixture { idp, config, dir }
    }

    pub fn conn(&self) -> &SamlConnection {
        &self.config.connections[0].saml
    }

    /// A valid response answering `_req1` at `t0()`.
    pub fn spec(&self) -> ResponseSpec {
        ResponseSpec::new(
            &self.conn().acs_url,
            &self.conn().sp_entity_id,
            "_req1",
            t0(),
        )
    }

    pub fn verify_xml(&self, xml: &str) -> Result<VerifiedAssertion, AcsError> {
        acs::verify(xml.as_bytes(), self.conn(), t0())
    }

    pub fn verify(&self, spec: &ResponseSpec) -> Result<VerifiedAssertion, AcsError> {
        self.verify_xml(&self.idp.response(spec))
    }
}

impl Default for AcsFixture {
    fn default() -> Self {
        Self::new()
    }
}
