//! The askama pages. Templates live in `templates/`, all extending `base.html`.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::PageError;

/// Renders a page with `status`, never cached and never leaking a Referer (pages carry login ids
/// and SAML messages). A template failure becomes the error page with `cid`.
pub fn render_page(
    page: &impl Template,
    status: StatusCode,
    cid: &str,
) -> Result<Response, PageError> {
    let html = page.render().map_err(|e| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "template",
            "The sign-in page could not be shown.",
            cid,
        )
        .logged(&e)
    })?;
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub login_id: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub advice: &'a str,
    pub correlation_id: &'a str,
}

#[derive(Template)]
#[template(path = "choose.html")]
pub struct ChoosePage<'a> {
    pub login_id: &'a str,
    pub email: &'a str,
    pub domain: &'a str,
    /// (connection id, display name)
    pub connections: Vec<(&'a str, &'a str)>,
}

/// The HTTP-POST binding: an auto-submitting form, with a visible button when scripts are off.
#[derive(Template)]
#[template(path = "saml_post.html")]
pub struct SamlPostPage<'a> {
    pub url: &'a str,
    pub saml_request: &'a str,
    pub relay_state: &'a str,
}

/// The same-site resubmit (field case 019): the IdP's cross-site POST reached the ACS without
/// the Lax binding cookie, so this page, served from the bridge's own origin, posts the same
/// response to the same ACS again; that POST is same-site and carries the cookie.
#[derive(Template)]
#[template(path = "saml_resubmit.html")]
pub struct SamlResubmitPage<'a> {
    pub acs_url: &'a str,
    pub saml_response: &'a str,
    pub relay_state: &'a str,
    /// The name of the field that marks the second POST.
    pub marker: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the character references askama writes (numeric, and the usual named ones).
    fn decode(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let end = at + rest[at..].find(';').expect("unterminated reference");
            let name = &rest[at + 1..end];
            let c = match name {
                "quot" => '"',
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "apos" => '\'',
                n if n.starts_with("#x") => {
                    char::from_u32(u32::from_str_radix(&n[2..], 16).unwrap()).unwrap()
                }
                n if n.starts_with('#') => char::from_u32(n[1..].parse().unwrap()).unwrap(),
                other => panic!("unknown reference &{other};"),
            };
            out.push(c);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The raw text of an attribute: from `prefix"` to the next `"`.
    fn attribute<'h>(html: &'h str, prefix: &str) -> &'h str {
        let start = html
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix}: {html}"))
            + prefix.len();
        let end = start + html[start..].find('"').unwrap();
        &html[start..end]
    }

    #[test]
    fn resubmit_page_escapes_every_echoed_value() {
        let (saml_response, relay_state) = (r#"PHNhbWw+"><script>x()</script>"#, "r'\"<>&");
        let acs_url = "https://sso.example.com/saml/acme/acs?a=1&b=2";
        let html = SamlResubmitPage {
            acs_url,
            saml_response,
            relay_state,
            marker: "resubmit",
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>x()"), "{html}");
        for (prefix, want) in [
            ("name=\"SAMLResponse\" value=\"", saml_response),
            ("name=\"RelayState\" value=\"", relay_state),
            ("<form method=\"post\" action=\"", acs_url),
        ] {
            let raw = attribute(&html, prefix);
            assert!(!raw.contains(['<', '>', '\'']), "{raw}");
            assert_eq!(decode(raw), want);
        }
        assert!(html.contains("name=\"resubmit\" value=\"1\""), "{html}");
        assert!(html.contains("<button type=\"submit\">"), "{html}");
        assert!(html.contains("document.forms[0].submit()"), "{html}");
    }
}
