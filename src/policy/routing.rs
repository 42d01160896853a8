//! Home-realm discovery and the domain guard: which connections serve an email domain, and
//! whether a connection may assert a given address. Domains compare exactly, or as a
//! dot-anchored suffix where subdomains are enabled — never as a bare suffix or substring.

use super::email::{Domain, Email};

/// One domain a connection serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRule {
    pub domain: Domain,
    pub include_subdomains: bool,
}

impl DomainRule {
    pub fn exact(domain: Domain) -> Self {
        Self {
            domain,
            include_subdomains: false,
        }
    }

    pub fn covers(&self, candidate: &Domain) -> bool {
        let (d, c) = (self.domain.as_str(), candidate.as_str());
        c == d
            || (self.include_subdomains
                && c.len() > d.len()
                && c.ends_with(d)
                && c.as_bytes()[c.len() - d.len() - 1] == b'.')
    }
}

/// The routing facts of one connection, as the policy sees them.
#[derive(Debug, Clone)]
pub struct ConnectionDomains {
    pub connection_id: String,
    pub domains: Vec<DomainRule>,
    pub enforce_sso: bool,
}

impl ConnectionDomains {
    pub fn covers(&self, domain: &Domain) -> bool {
        self.domains.iter().any(|d| d.covers(domain))
    }
}

/// Connections that serve `domain`, in configuration order.
pub fn connections_for<'a>(
    connections: &'a [ConnectionDomains],
    domain: &Domain,
) -> Vec<&'a ConnectionDomains> {
    connections.iter().filter(|c| c.covers(domain)).collect()
}

/// Why a connection may not assert an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardRefusal {
    /// The domain is not one of the connection's domains.
    ForeignDomain,
    /// The domain belongs to another connection that enforces SSO for it.
    EnforcedElsewhere { connection_id: String },
}

/// The domain guard: a connection may only assert addresses in its own domains, whatever its
/// IdP signed; and a domain enforced by some connection may only log in through connections
/// that enforce it too.
pub fn guard(
    all: &[ConnectionDomains],
    connection: &ConnectionDomains,
    email: &Email,
) -> Result<(), GuardRefusal> {
    if !connection.covers(email.domain()) {
        return Err(GuardRefusal::ForeignDomain);
    }
    if !connection.enforce_sso {
        if let Some(owner) = all.iter().find(|c| {
            c.enforce_sso && c.connection_id != connection.connection_id && c.covers(email.domain())
        }) {
            return Err(GuardRefusal::EnforcedElsewhere {
                connection_id: owner.connection_id.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, domains: &[(&str, bool)], enforce: bool) -> ConnectionDomains {
        ConnectionDomains {
            connection_id: id.into(),
            domains: domains
                .iter()
                .map(|(d, sub)| DomainRule {
                    domain: Domain::parse(d).unwrap(),
                    include_subdomains: *sub,
                })
                .collect(),
            enforce_sso: enforce,
        }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn routes_by_normalised_domain() {
        let cs = [
            conn("a", &[("acme.test", false)], true),
            conn("b", &[("other.test", false)], true),
        ];
        let found = connections_for(&cs, email("X@ACME.TEST.").domain());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].connection_id, "a");
        assert!(connections_for(&cs, &Domain::parse("sub.acme.test").unwrap()).is_empty());
    }

    #[test]
    fn subdomains_are_dot_anchored_and_opt_in() {
        let exact = DomainRule::exact(Domain::parse("example.com").unwrap());
        let subs = DomainRule {
            include_subdomains: true,
            ..exact.clone()
        };
        for (candidate, exact_ok, subs_ok) in [
            ("example.com", true, true),
            ("eu.example.com", false, true),
            ("a.b.example.com", false, true),
            ("notexample.com", false, false),
            ("example.com.attacker.example", false, false),
            ("xexample.com", false, false),
        ] {
            let d = Domain::parse(candidate).unwrap();
            assert_eq!(exact.covers(&d), exact_ok, "{candidate} exact");
            assert_eq!(subs.covers(&d), subs_ok, "{candidate} with subdomains");
        }
    }

    #[test]
    fn guard_refuses_foreign_and_enforced_elsewhere() {
        let acme = conn("acme", &[("acme.test", false)], true);
        let lax = conn("lax", &[("acme.test", false), ("lax.test", false)], false);
        let all = [acme.clone(), lax.clone()];
        assert_eq!(guard(&all, &acme, &email("x@acme.test")), Ok(()));
        assert_eq!(
            guard(&all, &acme, &email("x@evil.test")),
            Err(GuardRefusal::ForeignDomain)
        );
        assert_eq!(
            guard(&all, &acme, &email("x@acme.test.evil.test")),
            Err(GuardRefusal::ForeignDomain)
        );
        assert_eq!(
            guard(&all, &lax, &email("x@acme.test")),
            Err(GuardRefusal::EnforcedElsewhere {
                connection_id: "acme".into()
            })
        );
        assert_eq!(guard(&all, &lax, &email("x@lax.test")), Ok(()));
    }
}
