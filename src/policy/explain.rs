//! Human-readable account of a decision, for `sso-bridge explain` and support: the verdict and,
//! for every role, the rule that produced it.

use std::fmt::Write;

use super::decide::{Decision, DenialReason, DEFAULT_RULE};

fn cite(rules: &[String]) -> String {
    if rules.is_empty() {
        return "no rule".into();
    }
    rules
        .iter()
        .map(|r| {
            if r == DEFAULT_RULE {
                "the unmatched default".to_owned()
            } else {
                format!("rule \"{r}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders `decision` as indented text lines.
pub fn render(decision: &Decision) -> String {
    let mut out = String::new();
    match &decision.denial {
        Some(d) => {
            let why = match (d.reason, &d.rule) {
                (DenialReason::DenyRule, Some(r)) => format!("deny rule \"{r}\" matched"),
                (DenialReason::DenyRule, None) => "a deny rule matched".to_owned(),
                (DenialReason::NoMatchingRule, _) => {
                    "no rule grants access and unmatched users are denied".to_owned()
                }
            };
            let _ = writeln!(out, "decision: DENIED — {why}");
        }
        None => {
            let _ = writeln!(out, "decision: ALLOWED");
        }
    }
    for org in &decision.orgs {
        let from = if org.role_from.is_empty() {
            "project rules only".to_owned()
        } else {
            cite(&org.role_from)
        };
        let _ = writeln!(out, "  organization {}: {} ({from})", org.org, org.role);
        for p in &org.projects {
            let membership = if p.write_membership {
                "project membership written"
            } else {
                "same as the organization role, no project membership"
            };
            let mut why = Vec::new();
            if !p.granted_by.is_empty() {
                why.push(format!("granted by {}", cite(&p.granted_by)));
            }
            if let Some(c) = &p.capped_by {
                why.push(format!("capped by rule \"{c}\""));
            }
            let _ = writeln!(
                out,
                "    project {}: {} — {membership} ({})",
                p.project,
                p.role,
                why.join("; ")
            );
        }
    }
    if decision.matched_rules.is_empty() {
        let _ = writeln!(out, "matched rules: none");
    } else {
        let _ = writeln!(out, "matched rules: {}", decision.matched_rules.join(", "));
    }
    for n in &decision.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
