//! A scripted browser: a cookie-keeping HTTPS client that signs in and fills scopegate's forms.

#![allow(dead_code)]

use reqwest::header::LOCATION;
use reqwest::StatusCode;

/// Reads a hidden input's value from a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Undoes maud's HTML escaping.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where an authorization request ended.
#[derive(Debug)]
pub enum Outcome {
    /// A redirect to the client (the full URL).
    Redirect(url::Url),
    /// The consent page (its HTML).
    Consent(String),
    /// An error page on scopegate.
    Page(StatusCode, String),
}

impl Outcome {
    pub fn redirect(self) -> url::Url {
        match self {
            Outcome::Redirect(u) => u,
            other => panic!("expected a redirect to the client, got {other:?}"),
        }
    }
    pub fn consent(self) -> String {
        match self {
            Outcome::Consent(h) => h,
            other => panic!("expected the consent page, got {other:?}"),
        }
    }
}

/// A query parameter of a URL.
pub fn param(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(base: &str, cert_pem: &[u8]) -> Browser {
        Browser {
            client: crate::support::client(cert_pem, false),
            base: base.to_string(),
        }
    }

    fn abs(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.abs(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.abs(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the sign-in page.
    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.sign_in_next(email, password, "/developers/apps").await
    }

    pub async fn sign_in_next(&self, email: &str, password: &str, next: &str) -> reqwest::Response {
        let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let html = self
            .get(&format!("/login?next={enc}"))
            .await
            .text()
            .await
            .unwrap();
        let csrf = hidden(&html, "csrf").expect("the sign-in form has a CSRF token");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", next),
                ("email", email),
                ("password", password),
                ("action", "signin"),
            ],
        )
        .await
    }

    /// Follows an authorization request through scopegate's own redirects (sign-in included).
    pub async fn authorize(&self, path_and_query: &str, email: &str, password: &str) -> Outcome {
        let mut url = self.abs(path_and_query);
        for _ in 0..5 {
            let res = self.client.get(&url).send().await.unwrap();
            let status = res.status();
            if status.is_redirection() {
                let loc = res.headers()[LOCATION].to_str().unwrap().to_string();
                if let Some(rest) = loc.strip_prefix("/login?next=") {
                    let next: String = url::form_urlencoded::parse(format!("n={rest}").as_bytes())
                        .next()
                        .unwrap()
                        .1
                        .into_owned();
                    let r = self.sign_in_next(email, password, &next).await;
                    assert_eq!(r.status(), 303, "sign-in failed");
                    url = self.abs(&next);
                    continue;
                }
                return Outcome::Redirect(url::Url::parse(&loc).unwrap());
            }
            let body = res.text().await.unwrap();
            if status == 200 && body.contains("/oauth/v2/authorization/consent") {
                return Outcome::Consent(body);
            }
            return Outcome::Page(status, body);
        }
        panic!("too many redirects");
    }

    /// Submits the consent page with `allow` or `cancel`.
    pub async fn consent(&self, page: &str, action: &str) -> url::Url {
        let res = self
            .post(
                "/oauth/v2/authorization/consent",
                &[
                    ("csrf", &hidden(page, "csrf").unwrap()),
                    ("request", &hidden(page, "request").unwrap()),
                    ("action", action),
                ],
            )
            .await;
        assert_eq!(res.status(), 302, "consent did not redirect");
        url::Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap()
    }
}
