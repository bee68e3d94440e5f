//! Throttling of repeated client-authentication failures (RFC 6749 10.10, RFC 7662 4: an
//! endpoint that checks secrets must not let an attacker try them at will).
//!
//! Failures are counted per source address and per (client, address) pair, never per client
//! alone: an attacker failing as a client from elsewhere cannot lock the legitimate client out.
//! Counters live in memory, where they cost nothing on the success path. With several nodes on
//! PostgreSQL the failures are also counted in the store (oauth::client), so that N nodes do not
//! give an attacker N times the attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed per (client, address) in a window.
pub const PER_PAIR: u32 = 10;
/// Failures allowed per address (any client) in a window.
pub const PER_ADDRESS: u32 = 50;
/// Unknown tokens, codes or refresh tokens presented from one address in a window: guessing them
/// must not be free (RFC 7662 4, RFC 6749 10.10). Expired tokens that were purged also count, so
/// the limit leaves room for a resource server that sees many of those.
pub const GUESSES_PER_ADDRESS: u32 = 100;
/// The window, in seconds.
pub const WINDOW: i64 = 300;
/// Entries kept at most; the oldest windows go first.
const MAX_ENTRIES: usize = 100_000;

/// Counts of recent failures.
#[derive(Default)]
pub struct Throttle {
    counts: Mutex<HashMap<String, (u32, i64)>>,
}

/// The counter keys of a client at an address: by address, then by (client, address).
pub fn keys(client_id: &str, addr: Option<IpAddr>) -> Option<[String; 2]> {
    let a = addr?;
    Some([format!("addr|{a}"), format!("pair|{client_id}|{a}")])
}

/// Seconds to wait when counts kept elsewhere (the store, shared by several nodes) pass the
/// limits; their window's start is not kept, so the whole window is asked for.
pub fn over_limits(by_addr: i64, by_pair: i64) -> Option<i64> {
    (by_pair >= i64::from(PER_PAIR) || by_addr >= i64::from(PER_ADDRESS)).then_some(WINDOW)
}

impl Throttle {
    /// Seconds to wait, when this client at this address has failed too often.
    pub fn blocked(&self, client_id: &str, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let [by_addr, by_pair] = keys(client_id, addr)?;
        self.over(&by_pair, PER_PAIR, now)
            .or_else(|| self.over(&by_addr, PER_ADDRESS, now))
    }

    /// Counts one failure.
    pub fn fail(&self, client_id: &str, addr: Option<IpAddr>, now: i64) {
        if let Some(keys) = keys(client_id, addr) {
            self.count(&keys, now);
        }
    }

    /// Seconds to wait, when this address has presented too many unknown tokens or codes.
    pub fn guessing(&self, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        self.over(&format!("guess|{}", addr?), GUESSES_PER_ADDRESS, now)
    }

    /// Counts one unknown token, code or refresh token presented from this address.
    pub fn guessed(&self, addr: Option<IpAddr>, now: i64) {
        if let Some(a) = addr {
            self.count(&[format!("guess|{a}")], now);
        }
    }

    fn over(&self, key: &str, limit: u32, now: i64) -> Option<i64> {
        let counts = self.counts.lock().ok()?;
        counts
            .get(key)
            .filter(|(n, start)| *n >= limit && now < start + WINDOW)
            .map(|(_, start)| start + WINDOW - now)
    }

    fn count(&self, keys: &[String], now: i64) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if counts.len() >= MAX_ENTRIES {
            counts.retain(|_, (_, start)| now < *start + WINDOW);
        }
        for key in keys {
            let e = counts.entry(key.clone()).or_insert((0, now));
            if now >= e.1 + WINDOW {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_blocked_after_its_failures_and_others_are_not() {
        let t = Throttle::default();
        let attacker: IpAddr = "10.0.0.9".parse().unwrap();
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..PER_PAIR {
            assert!(t.blocked("app", Some(attacker), 100).is_none());
            t.fail("app", Some(attacker), 100);
        }
        assert!(t.blocked("app", Some(attacker), 100).is_some());
        assert!(
            t.blocked("app", Some(client), 100).is_none(),
            "the legitimate client elsewhere is not locked out"
        );
        assert!(
            t.blocked("app", Some(attacker), 100 + WINDOW).is_none(),
            "the window ends"
        );
    }

    #[test]
    fn an_address_presenting_unknown_tokens_is_slowed_down() {
        let t = Throttle::default();
        let scanner: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..GUESSES_PER_ADDRESS {
            assert!(t.guessing(Some(scanner), 100).is_none());
            t.guessed(Some(scanner), 100);
        }
        assert_eq!(t.guessing(Some(scanner), 100), Some(WINDOW));
        assert!(t.guessing(Some("10.0.0.1".parse().unwrap()), 100).is_none());
    }
}
