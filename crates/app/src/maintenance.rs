//! Background upkeep: expired codes, tokens, sessions and pending authorization requests are deleted in small batches through
//! their expiry indexes, never by a scan that stalls the server (Hydra's users end up with
//! token tables of many gigabytes; scopegate does not keep what has expired).

use std::time::Duration;

use scopegate_store::{pending, tokens};

use crate::state::Service;

/// Expired rows are kept this long, so introspection can still say "expired" rather than
/// "unknown" for a while.
pub const KEEP_EXPIRED: i64 = 7 * 24 * 3600;
/// Rows deleted per transaction: small enough never to hold the writer for long.
pub const BATCH: i64 = 500;

/// Deletes everything that expired before `KEEP_EXPIRED` ago; returns how many rows went.
pub async fn purge_once(app: &Service) -> u64 {
    let before = app.now() - KEEP_EXPIRED;
    let counters_before = app.now() - crate::throttle::COUNTS_KEPT;
    // A pending authorization request is of no use once expired: nothing asks about it later.
    let pending_before = app.now();
    let mut total = 0;
    loop {
        match app
            .store
            .write(move |c| {
                Ok(tokens::purge_expired(c, before, BATCH)?
                    + tokens::purge_attempt_counters(c, counters_before, BATCH)?
                    + pending::purge_expired(c, pending_before, BATCH)?)
            })
            .await
        {
            Ok(n) => {
                total += n;
                if n < BATCH as u64 {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "purging expired tokens failed; will retry");
                return total;
            }
        }
        // Let other writes through between batches.
        tokio::task::yield_now().await;
    }
}

/// Runs [`purge_once`] every `every`, forever.
pub async fn purge_loop(app: std::sync::Arc<Service>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let n = purge_once(&app).await;
        if n > 0 {
            tracing::info!(rows = n, "purged expired codes, tokens and sessions");
        }
    }
}
