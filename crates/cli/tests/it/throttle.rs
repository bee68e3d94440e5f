//! Guessing throttles: N parallel attempts never pass more than the limit.
//!
//! Every counter that guards guessing (passwords, client secrets, codes, tokens) is one row of
//! [`counters`], driven by one helper ([`parallel_guesses`]): many wrong guesses at once, from one
//! loopback address, half over HTTP/1.1 connections and half multiplexed on one HTTP/2
//! connection. The answers that are not 429 are the guesses the server actually evaluated; there
//! must be at most the counter's limit of them, and afterwards the right secret from that address
//! must be refused too (a correct guess slipped in late is not accepted past the limit). A new
//! counter is one new row.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use scopegate_app::throttle;
use serde_json::Value;

use crate::support::*;

/// The double-submit CSRF value the guessing clients send as cookie and form field alike.
const CSRF: &str = "csrf-value-for-the-guessing-tests-0123456789";

/// One request: the client to send it on, the attempt's number; its status.
type Send = Arc<
    dyn Fn(reqwest::Client, usize) -> Pin<Box<dyn Future<Output = u16> + std::marker::Send>>
        + std::marker::Send
        + Sync,
>;

/// A counter that guards guessing.
struct Counter {
    name: &'static str,
    /// Wrong guesses evaluated at most from one address.
    limit: u32,
    /// Guess number `i` (always wrong).
    guess: Send,
    /// The status of a wrong guess that was evaluated.
    evaluated: u16,
    /// The right secret, sent after the burst from the same address: it must get 429.
    right: Option<Send>,
}

/// A client bound to a loopback source address, speaking HTTP/1.1 only or HTTP/2 only.
fn client_from(s: &InProc, ip: IpAddr, http2: bool) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&s.cert_pem).unwrap();
    let b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .local_address(ip)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120));
    let b = if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().unwrap()
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Sends `n` guesses at once from `ip` (even ones over HTTP/1.1, odd ones over one HTTP/2
/// connection) and returns their statuses.
async fn parallel_guesses(s: &InProc, ip: IpAddr, n: usize, guess: &Send) -> Vec<u16> {
    let h1 = client_from(s, ip, false);
    let h2 = client_from(s, ip, true);
    // Open the HTTP/2 connection first, so the burst is multiplexed on it.
    let warm = h2
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.version(), reqwest::Version::HTTP_2);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = if i % 2 == 0 { h1.clone() } else { h2.clone() };
            tokio::spawn(guess(c, i))
        })
        .collect();
    let mut statuses = Vec::with_capacity(n);
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

fn form_post(
    url: String,
    form: Vec<(String, String)>,
) -> impl Fn(reqwest::Client) -> Pin<Box<dyn Future<Output = u16> + std::marker::Send>> {
    move |c: reqwest::Client| {
        let (url, form) = (url.clone(), form.clone());
        Box::pin(async move {
            let res = c.post(url).form(&form).send().await.unwrap();
            res.status().as_u16()
        })
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A sign-in attempt (the sign-in form's CSRF cookie and field sent alike).
fn sign_in(c: &reqwest::Client, url: &str, email: &str, password: &str) -> reqwest::RequestBuilder {
    c.post(url)
        .header("cookie", format!("__Host-sg_csrf={CSRF}"))
        .form(&[
            ("csrf", CSRF),
            ("next", "/developers/apps"),
            ("email", email),
            ("password", password),
            ("action", "signin"),
        ])
}

fn sign_in_send(
    url: String,
    email: impl Fn(usize) -> String + std::marker::Send + Sync + 'static,
    password: impl Fn(usize) -> String + std::marker::Send + Sync + 'static,
) -> Send {
    Arc::new(move |c: reqwest::Client, i: usize| {
        let req = sign_in(&c, &url, &email(i), &password(i));
        Box::pin(async move { req.send().await.unwrap().status().as_u16() })
    })
}

fn token_send(
    url: String,
    form: impl Fn(usize) -> Vec<(String, String)> + std::marker::Send + Sync + 'static,
) -> Send {
    Arc::new(move |c: reqwest::Client, i: usize| form_post(url.clone(), form(i))(c))
}

fn random_value(i: usize) -> String {
    let mut b = [0u8; 24];
    getrandom::getrandom(&mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("AQ{i}{hex}")
}

/// Every counter that guards guessing, with its limit.
async fn counters(s: &InProc) -> Vec<Counter> {
    let login = s.url("/login");
    let token = s.url("/oauth/v2/accessToken");
    let introspect = s.url("/oauth/v2/introspectToken");
    let revoke = s.url("/oauth/v2/revoke");
    let live = s.mint(DEMO_APP, None, "").await;
    let demo = |extra: Vec<(String, String)>| {
        let mut f = owned(&[("client_id", DEMO_APP), ("client_secret", DEMO_SECRET)]);
        f.extend(extra);
        f
    };
    let live_probe = {
        let live = live.clone();
        token_send(introspect.clone(), move |_| {
            demo(owned(&[("token", live.as_str())]))
        })
    };
    vec![
        Counter {
            name: "sign-in: one account from one address",
            limit: throttle::SIGN_IN_PER_ACCOUNT_AND_ADDRESS.free,
            guess: sign_in_send(
                login.clone(),
                |_| MEMBER.to_string(),
                |i| format!("wrong-{i}"),
            ),
            evaluated: 401,
            right: Some(sign_in_send(
                login.clone(),
                |_| MEMBER.to_string(),
                |_| DEMO_PASSWORD.to_string(),
            )),
        },
        Counter {
            name: "sign-in: many accounts from one address",
            limit: throttle::SIGN_IN_PER_ADDRESS.free,
            guess: sign_in_send(
                login.clone(),
                |i| format!("nobody{i}@example.com"),
                |i| format!("wrong-{i}"),
            ),
            evaluated: 401,
            right: Some(sign_in_send(
                login.clone(),
                |_| MEMBER.to_string(),
                |_| DEMO_PASSWORD.to_string(),
            )),
        },
        Counter {
            name: "client authentication: one client from one address",
            limit: throttle::PER_PAIR,
            guess: token_send(token.clone(), |i| {
                owned(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", DEMO_APP),
                    ("client_secret", &format!("wrong-{i}")),
                ])
            }),
            evaluated: 401,
            right: Some(token_send(token.clone(), move |_| {
                demo(owned(&[("grant_type", "client_credentials")]))
            })),
        },
        Counter {
            name: "client authentication: many clients from one address",
            limit: throttle::PER_ADDRESS,
            guess: token_send(token.clone(), |i| {
                owned(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &format!("sprayclient{i:05}")),
                    ("client_secret", "wrong"),
                ])
            }),
            evaluated: 401,
            right: Some(token_send(token.clone(), move |_| {
                demo(owned(&[("grant_type", "client_credentials")]))
            })),
        },
        Counter {
            name: "authorization codes at the token endpoint",
            limit: throttle::GUESSES_PER_ADDRESS,
            guess: token_send(token.clone(), move |i| {
                demo(owned(&[
                    ("grant_type", "authorization_code"),
                    ("code", &random_value(i)),
                    ("redirect_uri", DEMO_REDIRECT),
                ]))
            }),
            evaluated: 400,
            right: Some(live_probe.clone()),
        },
        Counter {
            name: "refresh tokens at the token endpoint",
            limit: throttle::GUESSES_PER_ADDRESS,
            guess: token_send(token.clone(), move |i| {
                demo(owned(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &random_value(i)),
                ]))
            }),
            evaluated: 400,
            right: Some(live_probe.clone()),
        },
        Counter {
            name: "tokens at introspection",
            limit: throttle::GUESSES_PER_ADDRESS,
            guess: token_send(introspect.clone(), move |i| {
                demo(owned(&[("token", &random_value(i))]))
            }),
            evaluated: 200,
            right: Some(live_probe.clone()),
        },
        Counter {
            name: "tokens at revocation",
            limit: throttle::GUESSES_PER_ADDRESS,
            guess: token_send(revoke.clone(), move |i| {
                demo(owned(&[("token", &random_value(i))]))
            }),
            evaluated: 200,
            right: Some(live_probe),
        },
    ]
}

#[tokio::test]
async fn parallel_guesses_never_pass_more_than_the_limit_of_any_counter() {
    let s = InProc::demo().await;
    let mut failed = Vec::new();
    for (n, c) in counters(&s).await.into_iter().enumerate() {
        let ip = loopback(10 + n as u8);
        let attempts = c.limit as usize + 40;
        let statuses = parallel_guesses(&s, ip, attempts, &c.guess).await;
        let evaluated = statuses.iter().filter(|s| **s != 429).count();
        let unexpected: Vec<_> = statuses
            .iter()
            .filter(|st| **st != 429 && **st != c.evaluated)
            .collect();
        assert!(
            unexpected.is_empty(),
            "{}: unexpected answers {unexpected:?}",
            c.name
        );
        assert!(evaluated > 0, "{}: no guess was evaluated at all", c.name);
        if evaluated > c.limit as usize {
            failed.push(format!(
                "{}: {evaluated} of {attempts} parallel guesses evaluated, limit {}",
                c.name, c.limit
            ));
        }
        if let Some(right) = &c.right {
            let status = right(client_from(&s, ip, false), 0).await;
            if status != 429 {
                failed.push(format!(
                    "{}: the right secret after the burst got {status}, not 429",
                    c.name
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test]
async fn a_member_guessed_from_one_address_still_signs_in_from_another() {
    let s = InProc::demo().await;
    let login = s.url("/login");
    let attacker = client_from(&s, loopback(30), false);
    let mut statuses = Vec::new();
    for i in 0..throttle::SIGN_IN_PER_ACCOUNT_AND_ADDRESS.free + 3 {
        let r = sign_in(&attacker, &login, MEMBER, &format!("wrong-{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // The member, from an address with no failures, with the right password.
    let member = client_from(&s, loopback(31), false);
    let r = sign_in(&member, &login, MEMBER, DEMO_PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the member is locked out by the attacker");
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("__Host-sg_session=")));
}

#[tokio::test]
async fn sign_in_delays_grow_with_each_failure_and_pass_with_the_clock() {
    let s = InProc::demo().await;
    let login = s.url("/login");
    let c = client_from(&s, loopback(40), false);
    let attempt = |password: String| {
        let req = sign_in(&c, &login, MEMBER, &password);
        async move {
            let r = req.send().await.unwrap();
            let wait = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
            (r.status().as_u16(), wait)
        }
    };
    let schedule = throttle::SIGN_IN_PER_ACCOUNT_AND_ADDRESS;
    for i in 0..schedule.free {
        assert_eq!(
            attempt(format!("wrong-{i}")).await.0,
            401,
            "free attempt {i}"
        );
    }
    let mut last_wait = 0;
    for round in 0..3 {
        let (status, wait) = attempt("wrong-again".into()).await;
        assert_eq!(status, 429, "round {round}: the delay applies");
        let wait = wait.expect("a 429 says how long to wait");
        assert!(
            wait > last_wait,
            "round {round}: the delay grows ({wait} after {last_wait})"
        );
        // Even the right password waits: the password is not checked during the delay.
        assert_eq!(attempt(DEMO_PASSWORD.into()).await.0, 429);
        s.clock.advance(wait);
        assert_eq!(
            attempt(format!("wrong-round-{round}")).await.0,
            401,
            "round {round}: one attempt after the delay"
        );
        last_wait = wait;
    }
    let (_, wait) = attempt("wrong".into()).await;
    s.clock.advance(wait.unwrap());
    assert_eq!(attempt(DEMO_PASSWORD.into()).await.0, 303);
    // Success forgets this address's failures for the account.
    assert_eq!(attempt("wrong-after-success".into()).await.0, 401);
}

#[tokio::test]
async fn sign_in_fails_closed_when_its_throttle_cannot_be_read() {
    let s = InProc::demo().await;
    s.state
        .store_for_tests()
        .write(|c| {
            c.execute("DROP TABLE sign_in_failures", &[])?;
            Ok(())
        })
        .await
        .unwrap();
    let c = client_from(&s, loopback(50), false);
    let r = sign_in(&c, &s.url("/login"), MEMBER, DEMO_PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        !r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().contains("session")),
        "no session without the throttle"
    );
}

#[tokio::test]
async fn revocation_answers_another_clients_token_as_it_answers_an_unknown_one() {
    let s = InProc::demo().await;
    let made = s.cli_json(&[
        "app",
        "create",
        "--name",
        "Other App",
        "--owner",
        "developer@scopegate.local",
        "--redirect-uri",
        "https://other.example/cb",
    ]);
    let (other, other_secret) = (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    );
    let demo_token = s.mint(DEMO_APP, None, "").await;
    let revoke_as_other = |token: String| {
        let (other, other_secret) = (other.clone(), other_secret.clone());
        let s = &s;
        async move {
            let res = s
                .client
                .post(s.url("/oauth/v2/revoke"))
                .form(&[
                    ("client_id", other.as_str()),
                    ("client_secret", other_secret.as_str()),
                    ("token", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let live = revoke_as_other(demo_token.clone()).await;
    let unknown = revoke_as_other(random_value(0)).await;
    assert_eq!(
        live, unknown,
        "another client's live token reads like an unknown one"
    );
    assert_eq!(live.0, 200);
    let (_, i) = s.introspect_demo(&demo_token).await;
    assert_eq!(i["active"], true, "and it is not revoked");
}

#[tokio::test]
async fn client_credentials_in_the_query_string_are_refused() {
    let s = InProc::demo().await;
    let token = s.mint(DEMO_APP, None, "").await;
    // RFC 6749 2.3.1: the credentials MUST NOT be in the request URI; RFC 7662 and RFC 7009
    // authenticate clients the same way.
    let endpoints: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "/oauth/v2/accessToken",
            vec![("grant_type", "client_credentials")],
        ),
        ("/oauth/v2/introspectToken", vec![("token", token.as_str())]),
        ("/oauth/v2/revoke", vec![("token", token.as_str())]),
    ];
    let secret_q = format!("client_secret={DEMO_SECRET}");
    let id_q = format!("client_id={DEMO_APP}");
    let both_q = format!("{id_q}&{secret_q}");
    let mut accepted = Vec::new();
    for (path, body) in &endpoints {
        for (in_query, in_body) in [
            (secret_q.as_str(), vec![("client_id", DEMO_APP)]),
            (id_q.as_str(), vec![("client_secret", DEMO_SECRET)]),
            (both_q.as_str(), vec![]),
        ] {
            let mut form = body.clone();
            form.extend(in_body);
            let res = s
                .client
                .post(s.url(&format!("{path}?{in_query}")))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap_or(Value::Null);
            if (status, v["error"].as_str()) != (400, Some("invalid_request")) {
                accepted.push(format!("{path}?{in_query}: {status} {v}"));
            }
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
    let (_, i) = s.introspect_demo(&token).await;
    assert_eq!(i["active"], true, "the refused revocations revoked nothing");
}

#[tokio::test]
async fn a_sign_in_refused_by_the_address_delay_stores_nothing() {
    // Each refused guess at a made-up account must not leave a stored counter behind: the table
    // would otherwise grow without bound at no cost to the attacker (nothing is hashed).
    let s = InProc::demo().await;
    let c = client_from(&s, loopback(61), false);
    let rows = |s: &InProc| {
        s.sql("SELECT count(*) FROM sign_in_failures")
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    let free = scopegate_app::throttle::SIGN_IN_PER_ADDRESS.free;
    for i in 0..free {
        let r = sign_in(&c, &s.url("/login"), &format!("nobody{i}@x.test"), "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let before = rows(&s);
    for i in 0..20 {
        let email = format!("{}{i}@x.test", "a".repeat(2_000));
        let r = sign_in(&c, &s.url("/login"), &email, "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            429,
            "attempt {i} past the address's free attempts"
        );
    }
    assert_eq!(rows(&s), before, "refused attempts stored counters");
}
