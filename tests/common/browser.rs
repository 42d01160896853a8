//! A scripted browser for the real-IdP tests: starts at the RP playing Langfuse, goes through
//! the bridge's login page and SimpleSAMLphp's login form, posts the IdP's auto-submit form to
//! the ACS, and ends at the RP's callback verdict — or at the bridge's refusal page.

use serde_json::Value;

use super::{browser, location};

/// The value of a hidden input in an HTML page, entity-decoded.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

pub fn form_action(html: &str) -> Option<String> {
    let at = html.find("<form")?;
    let a = html[at..].find("action=\"")? + at + 8;
    let end = html[a..].find('"')? + a;
    Some(unescape(&html[a..end]))
}

fn unescape(s: &str) -> String {
    // Numeric references first (askama writes `&#34;`, `&#38;`, `&#39;`, `&#60;`, `&#62;`),
    // then the named ones; `&amp;` last so nothing is decoded twice.
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let decoded = tail.find(';').and_then(|end| {
            let n = &tail[..end];
            let code = match n.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => n.parse().ok(),
            };
            code.and_then(char::from_u32).map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str("&#");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn absolute(base: &str, loc: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(loc)
        .unwrap()
        .to_string()
}

#[derive(Debug)]
pub enum Outcome {
    /// The RP's callback JSON (claims, userinfo, token_response_keys).
    Verdict(Value),
    /// The bridge refused at the ACS: status, `x-error-kind`, page text.
    Refused {
        status: u16,
        kind: String,
        page: String,
    },
}

impl Outcome {
    pub fn verdict(self) -> Value {
        match self {
            Outcome::Verdict(v) => v,
            other => panic!("expected a completed login, got {other:?}"),
        }
    }
}

/// One login by `user` (password `<user>pass`) typing `email` on the bridge's login page.
pub async fn login(rp: &str, bridge: &str, idp: &str, email: &str, user: &str) -> Outcome {
    let b = browser();
    let resp = b.get(format!("{rp}/start")).send().await.unwrap();
    assert_eq!(resp.status(), 302, "RP /start");
    let authorize = location(&resp);
    assert!(authorize.starts_with(bridge), "{authorize}");

    let resp = b.get(&authorize).send().await.unwrap();
    assert_eq!(
        resp.status(),
        303,
        "authorize {authorize}: {:?}",
        resp.headers().get("x-error-kind")
    );
    let login_page = absolute(bridge, &location(&resp));
    let page = b
        .get(&login_page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login_id = input_value(&page, "login").expect("login id on the page");
    let resp = b
        .post(format!("{bridge}/login"))
        .form(&[("login", login_id.as_str()), ("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "login page");
    let to_idp = location(&resp);
    assert!(to_idp.starts_with(idp), "{to_idp}");

    let resp = b.get(&to_idp).send().await.unwrap();
    assert_eq!(resp.status(), 302, "IdP SSO");
    let form_url = absolute(idp, &location(&resp));
    let form = b.get(&form_url).send().await.unwrap().text().await.unwrap();
    let auth_state = input_value(&form, "AuthState").expect("AuthState");
    let password = format!("{user}pass");
    let resp = b
        .post(&form_url)
        .form(&[
            ("username", user),
            ("password", password.as_str()),
            ("AuthState", auth_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let post_page = resp.text().await.unwrap();
    let acs = form_action(&post_page).expect("auto-post form");
    let saml_response = input_value(&post_page, "SAMLResponse")
        .unwrap_or_else(|| panic!("no SAMLResponse: {post_page}"));
    let relay_state = input_value(&post_page, "RelayState").expect("RelayState");
    assert!(acs.starts_with(bridge), "{acs}");

    let resp = b
        .post(&acs)
        .form(&[
            ("SAMLResponse", saml_response.as_str()),
            ("RelayState", relay_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    if resp.status() != 303 {
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("x-error-kind")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        return Outcome::Refused {
            status,
            kind,
            page: resp.text().await.unwrap(),
        };
    }
    let callback = location(&resp);
    assert!(callback.starts_with(rp), "{callback}");
    let resp = b.get(&callback).send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "RP callback failed: {body}");
    Outcome::Verdict(body)
}
