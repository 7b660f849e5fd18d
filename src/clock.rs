//! Wall-clock time, the one place the service reads it: quote `ts`, token expiry, feed age.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in Unix epoch milliseconds, the `ts` of quotes; 0 before 1970.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Wall-clock time in whole Unix epoch seconds, for token expiry.
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
