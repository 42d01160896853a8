//! The askama pages. Templates live in `templates/`, all extending `base.html`.

use askama::Template;

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
