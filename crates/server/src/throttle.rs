//! Throttling of repeated client-authentication failures (RFC 6749 10.10, RFC 7662 4: an
//! endpoint that checks secrets must not let an attacker try them at will).
//!
//! Failures are counted per source address and per (client, address) pair, never per client
//! alone: an attacker failing as a client from elsewhere cannot lock the legitimate client out.
//! Counters live in memory, per node: they cost nothing on the success path, and a node that
//! restarts forgets them, which only ever errs towards letting a client in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed per (client, address) in a window.
pub const PER_PAIR: u32 = 10;
/// Failures allowed per address (any client) in a window.
pub const PER_ADDRESS: u32 = 50;
/// The window, in seconds.
pub const WINDOW: i64 = 300;
/// Entries kept at most; the oldest windows go first.
const MAX_ENTRIES: usize = 100_000;

/// Counts of recent failures.
#[derive(Default)]
pub struct Throttle {
    counts: Mutex<HashMap<String, (u32, i64)>>,
}

fn keys(client_id: &str, addr: Option<IpAddr>) -> Option<(String, String)> {
    let a = addr?;
    Some((format!("addr|{a}"), format!("pair|{client_id}|{a}")))
}

impl Throttle {
    /// Seconds to wait, when this client at this address has failed too often.
    pub fn blocked(&self, client_id: &str, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let (by_addr, by_pair) = keys(client_id, addr)?;
        let counts = self.counts.lock().ok()?;
        let over = |key: &str, limit: u32| {
            counts
                .get(key)
                .filter(|(n, start)| *n >= limit && now < start + WINDOW)
                .map(|(_, start)| start + WINDOW - now)
        };
        over(&by_pair, PER_PAIR).or_else(|| over(&by_addr, PER_ADDRESS))
    }

    /// Counts one failure.
    pub fn fail(&self, client_id: &str, addr: Option<IpAddr>, now: i64) {
        let Some((by_addr, by_pair)) = keys(client_id, addr) else {
            return;
        };
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if counts.len() >= MAX_ENTRIES {
            counts.retain(|_, (_, start)| now < *start + WINDOW);
        }
        for key in [by_addr, by_pair] {
            let e = counts.entry(key).or_insert((0, now));
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
}
