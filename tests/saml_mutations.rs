//! Property test over mutated SAML responses, in the normal suite so every CI run exercises the
//! parser and verifier on hostile input without a fuzzing build: whatever a mutation does, the
//! ACS never panics, and a mutated response it still accepts yields exactly the claims the IdP
//! signed — no mutation can change who logs in.

mod common;

use common::saml_idp::{ResponseSpec, TestIdp};
use common::{make_config, t0, ConnSpec};
use proptest::prelude::*;
use sso_bridge::saml::acs;

struct Fixture {
    config: sso_bridge::config::RuntimeConfig,
    responses: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let idp = TestIdp::new("https://idp.acme.test");
        let dir = tempfile::tempdir().unwrap();
        let config = make_config(
            dir.path(),
            "https://sso.example.com",
            None,
            &[common::REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: idp.metadata(),
                extra: "",
            }],
        );
        let conn = &config.connections[0].saml;
        let responses = [(false, true), (true, false), (true, true)]
            .into_iter()
            .map(|(r, a)| {
                let mut spec = ResponseSpec::new(&conn.acs_url, &conn.sp_entity_id, "_req1", t0());
                spec.sign_response = r;
                spec.sign_assertion = a;
                idp.response(&spec).into_bytes()
            })
            .collect();
        Fixture {
            config,
            responses,
            _dir: dir,
        }
    })
}

/// Snippets an attacker likes to splice in.
const SNIPPETS: &[&str] = &[
    "<!---->",
    "<?pi x?>",
    "<!DOCTYPE x [<!ENTITY e \"e\">]>",
    "&e;",
    "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_x\"/>",
    "admin@acme.test",
    "\u{0}",
    "]]>",
    "<![CDATA[x]]>",
    "\"",
    "<",
    "+ADw-",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, snippet: usize },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..SNIPPETS.len())
            .prop_map(|(at, snippet)| Mutation::Insert { at, snippet }),
        (any::<usize>(), 1usize..400).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn apply(doc: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for m in muts {
        if d.is_empty() {
            break;
        }
        match *m {
            Mutation::Flip { at, bit } => {
                let i = at % d.len();
                d[i] ^= 1 << bit;
            }
            Mutation::Delete { at, len } => {
                let i = at % d.len();
                let end = (i + len).min(d.len());
                d.drain(i..end);
            }
            Mutation::Insert { at, snippet } => {
                let i = at % (d.len() + 1);
                d.splice(i..i, SNIPPETS[snippet].bytes());
            }
            Mutation::Duplicate { at, len } => {
                let i = at % d.len();
                let end = (i + len).min(d.len());
                let copy = d[i..end].to_vec();
                d.splice(end..end, copy);
            }
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn mutated_responses_never_panic_and_never_change_the_claims(
        which in 0usize..3,
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let f = fixture();
        let conn = &f.config.connections[0].saml;
        let original = acs::verify(&f.responses[which], conn, t0()).expect("the unmutated response is accepted");
        let mutated = apply(&f.responses[which], &muts);
        if let Ok(v) = acs::verify(&mutated, conn, t0()) {
            prop_assert_eq!(&v.email, &original.email);
            prop_assert_eq!(&v.subject, &original.subject);
            prop_assert_eq!(&v.groups, &original.groups);
            prop_assert_eq!(&v.name, &original.name);
        }
    }
}
