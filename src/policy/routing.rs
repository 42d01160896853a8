//! Home-realm discovery and the domain guard: which connection serves an email domain, and
//! whether a connection may assert a given address.

use super::email::{Domain, Email};

/// The routing facts of one connection, as the policy sees them.
#[derive(Debug, Clone)]
pub struct ConnectionDomains {
    pub connection_id: String,
    pub domains: Vec<Domain>,
}

/// Connections that serve `domain`, in configuration order.
pub fn connections_for<'a>(
    connections: &'a [ConnectionDomains],
    domain: &Domain,
) -> Vec<&'a ConnectionDomains> {
    connections
        .iter()
        .filter(|c| c.domains.iter().any(|d| d == domain))
        .collect()
}

/// The domain guard: a connection may only assert addresses in its own domains, whatever its
/// IdP signed.
pub fn connection_may_assert(connection: &ConnectionDomains, email: &Email) -> bool {
    connection.domains.iter().any(|d| d == email.domain())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, domains: &[&str]) -> ConnectionDomains {
        ConnectionDomains {
            connection_id: id.into(),
            domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
        }
    }

    #[test]
    fn routes_by_normalised_domain() {
        let cs = [conn("a", &["acme.test"]), conn("b", &["other.test"])];
        let d = Email::parse("X@ACME.TEST.").unwrap();
        let found = connections_for(&cs, d.domain());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].connection_id, "a");
        assert!(connections_for(&cs, &Domain::parse("sub.acme.test").unwrap()).is_empty());
    }

    #[test]
    fn guard_refuses_foreign_domains() {
        let c = conn("a", &["acme.test"]);
        assert!(connection_may_assert(
            &c,
            &Email::parse("x@acme.test").unwrap()
        ));
        assert!(!connection_may_assert(
            &c,
            &Email::parse("x@evil.test").unwrap()
        ));
        assert!(!connection_may_assert(
            &c,
            &Email::parse("x@acme.test.evil.test").unwrap()
        ));
    }
}
