//! The signature of a delivery, as [`paas_api::webhooks::SIGNATURE_HEADER`] carries it:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed by the webhook's secret. The
//! time is signed with the body, so a receiver that refuses old timestamps refuses replays.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = hex::encode(mac.finalize().into_bytes());
    format!("t={timestamp},v1={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_time_and_the_body() {
        // Python: hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("key", 1_700_000_000, "{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn another_secret_time_or_body_signs_differently() {
        let base = signature("0123456789abcdef", 10, r#"{"a":1}"#);
        assert_ne!(base, signature("0123456789abcdeg", 10, r#"{"a":1}"#));
        assert_ne!(base, signature("0123456789abcdef", 11, r#"{"a":1}"#));
        assert_ne!(base, signature("0123456789abcdef", 10, r#"{"a":2}"#));
    }
}
