//! Redirect URLs: what may be registered, and how an authorization request's URL is matched.

use std::fmt;

/// The most redirect URLs an app may register.
pub const MAX_REDIRECT_URIS: usize = 32;
/// The longest redirect URL accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// A registrable redirect URL: absolute, https (http only for loopback), no fragment, no
/// credentials, with any query string removed (LinkedIn ignores parameters on registered URLs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

/// Why a redirect URL cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URL must be absolute, like https://example.com/callback")]
    NotAbsolute,
    #[error(
        "redirect URL must use https (http is allowed only for 127.0.0.1, [::1] and localhost)"
    )]
    NotHttps,
    #[error("redirect URL cannot include a fragment (#)")]
    Fragment,
    #[error("redirect URL cannot include a user name or password")]
    Credentials,
    #[error("redirect URL is longer than {MAX_REDIRECT_URI_LEN} characters")]
    TooLong,
    #[error("redirect URL contains spaces or control characters")]
    BadCharacters,
    #[error("redirect URL cannot contain wildcards (*): each URL is matched exactly")]
    Wildcard,
}

/// True for the loopback hosts RFC 8252 allows plain http on.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        url::Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

impl RedirectUri {
    /// Validates and normalizes a URL for registration.
    pub fn parse(input: &str) -> Result<RedirectUri, RedirectUriError> {
        let input = input.trim();
        if input.len() > MAX_REDIRECT_URI_LEN {
            return Err(RedirectUriError::TooLong);
        }
        if input.chars().any(|c| c.is_control() || c == ' ') {
            return Err(RedirectUriError::BadCharacters);
        }
        if input.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        let mut url = url::Url::parse(input).map_err(|_| RedirectUriError::NotAbsolute)?;
        let host = url.host().ok_or(RedirectUriError::NotAbsolute)?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            "http" => return Err(RedirectUriError::NotHttps),
            _ => return Err(RedirectUriError::NotAbsolute),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::Credentials);
        }
        url.set_query(None);
        // Matching is exact, so a `*` would never act as a wildcard; refusing it stops a developer
        // from believing it does. Checked after parsing: `%2A` in a host decodes to `*`.
        if input.contains('*') || url.as_str().contains('*') {
            return Err(RedirectUriError::Wildcard);
        }
        // Normalizing can lengthen a URL (an IDN host becomes punycode): the stored form must
        // itself be within the limit, or it would not parse again.
        if url.as_str().len() > MAX_REDIRECT_URI_LEN {
            return Err(RedirectUriError::TooLong);
        }
        Ok(RedirectUri(url.to_string()))
    }

    /// True for an http(s) URL on a loopback host (native apps).
    pub fn is_loopback(&self) -> bool {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host().map(|h| is_loopback_host(&h)))
            .unwrap_or(false)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 9700 2.1 / 4.1.3: a requested redirect_uri matches only by simple string comparison with a
/// registered one. No normalization, prefix or pattern matching: each is a known bypass.
pub fn matches_registered<'a>(requested: &str, registered: &'a [String]) -> Option<&'a str> {
    registered
        .iter()
        .find(|r| r.as_str() == requested)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert_eq!(
            RedirectUri::parse("https://dev.example.com/auth/linkedin/callback?id=1")
                .unwrap()
                .as_str(),
            "https://dev.example.com/auth/linkedin/callback"
        );
        assert_eq!(
            RedirectUri::parse("/auth/linkedin/callback"),
            Err(RedirectUriError::NotAbsolute)
        );
        assert_eq!(
            RedirectUri::parse("https://dev.example.com/cb#linkedin"),
            Err(RedirectUriError::Fragment)
        );
        assert_eq!(
            RedirectUri::parse("http://dev.example.com/cb"),
            Err(RedirectUriError::NotHttps)
        );
        assert!(RedirectUri::parse("http://127.0.0.1:8080/cb").is_ok());
        assert!(RedirectUri::parse("http://[::1]:9000/cb").is_ok());
        assert!(RedirectUri::parse("http://localhost:8080/login").is_ok());
        assert_eq!(
            RedirectUri::parse("https://user:pw@example.com/cb"),
            Err(RedirectUriError::Credentials)
        );
        assert_eq!(
            RedirectUri::parse("javascript:alert(1)"),
            Err(RedirectUriError::NotAbsolute)
        );
        for wildcard in [
            "https://*.client.example/cb",
            "https://client.example/*",
            "https://client.example/cb*",
            "https://x%2A.example/cb",
        ] {
            assert_eq!(
                RedirectUri::parse(wildcard),
                Err(RedirectUriError::Wildcard)
            );
        }
        assert!(RedirectUri::parse("http://127.0.0.1:1/cb")
            .unwrap()
            .is_loopback());
        assert!(!RedirectUri::parse("https://example.com/cb")
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn matching_is_exact() {
        let reg = vec!["https://client.example/cb".to_string()];
        assert!(matches_registered("https://client.example/cb", &reg).is_some());
        for v in [
            "https://client.example/cb/",
            "https://client.example/cb?x=1",
            "https://CLIENT.example/cb",
            "https://client.example/cb/../cb",
            "https://client.example:443/cb",
            "https://client.example/cbx",
            "https://client.example.evil/cb",
        ] {
            assert!(matches_registered(v, &reg).is_none(), "{v}");
        }
    }
}
