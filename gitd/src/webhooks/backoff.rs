//! When a failed delivery is tried again: after the first retry's delay, doubled per attempt
//! made, up to [`MAX_RETRY_DELAY`], until `attempts` attempts were made in all.

use std::time::Duration;

use super::WebhookSettings;

/// No retry waits longer than this, however many attempts are configured.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// The wait before the next attempt after `made` attempts (1 for the first) failed; `None`
/// when that was the last.
pub fn retry_delay(settings: &WebhookSettings, made: u32) -> Option<Duration> {
    if made == 0 || made >= settings.attempts {
        return None;
    }
    let first = Duration::from_millis(settings.first_retry_ms);
    let doubled = first.saturating_mul(2u32.saturating_pow(made - 1));
    Some(doubled.min(MAX_RETRY_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_first_until_the_attempts_are_used_up() {
        let settings = WebhookSettings::default();
        let delays: Vec<Option<u64>> = (1..=7)
            .map(|made| retry_delay(&settings, made).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [Some(1), Some(2), Some(4), Some(8), Some(16), None, None],
            "6 attempts, starting at 1 s"
        );
    }

    #[test]
    fn delays_are_capped() {
        let settings = WebhookSettings {
            attempts: 40,
            ..WebhookSettings::default()
        };
        assert_eq!(retry_delay(&settings, 39), Some(MAX_RETRY_DELAY));
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let settings = WebhookSettings {
            attempts: 1,
            ..WebhookSettings::default()
        };
        assert_eq!(retry_delay(&settings, 1), None);
    }
}
