//! W5's side of a carrier: inbound texts posted as Twilio posts them, a
//! form-encoded `POST {public_url}/webhooks/twilio/{connection}/messages`
//! signed with `X-Twilio-Signature`, from many outside numbers to one
//! business number.
//!
//! Each webhook carries the generator's stamp as its `Body`, so the
//! extensions' WebSockets account for it like any other message, and a
//! `MessageSid` of its own. A few webhooks are posted a second time with the
//! same `MessageSid`, as a carrier retries one whose answer it missed: the
//! server must answer 200 again and make no second message, which the
//! ledger would count as a duplicate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::api::SendOutcome;
use crate::stamp::Stamp;

/// Area codes of the outside numbers. Their 555-0100 to 555-0199 lines are
/// set aside for fiction and still valid numbers by the numbering plan's
/// rules, so the server accepts them and no real phone is named.
const AREA_CODES: [u16; 20] = [
    206, 212, 303, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 808, 816, 901, 919, 949, 978,
    984,
];
/// Lines per area code: 555-0100 to 555-0199.
const LINES: usize = 100;

/// The most distinct outside numbers [`external_numbers`] makes.
pub const MAX_EXTERNALS: usize = AREA_CODES.len() * LINES;

/// `count` distinct outside numbers in E.164 form, none of them `business`.
pub fn external_numbers(count: usize, business: &str) -> Result<Vec<String>> {
    let numbers: Vec<String> = AREA_CODES
        .iter()
        .flat_map(|area| (0..LINES).map(move |line| format!("+1{area}55501{line:02}")))
        .filter(|number| number != business)
        .take(count)
        .collect();
    if numbers.len() < count || count == 0 {
        bail!(
            "--externals must be between 1 and {}",
            MAX_EXTERNALS.saturating_sub(1)
        );
    }
    Ok(numbers)
}

/// A carrier message id, `SM` and 32 hex digits, unique per run, phase and
/// message, so that no two webhooks of any run are taken for one another.
pub fn message_sid(run: u64, phase: u32, index: u64) -> String {
    format!("SM{:08x}{:08x}{:016x}", run & 0xffff_ffff, phase, index)
}

/// Where and how the webhooks of a run are posted.
#[derive(Debug)]
pub struct Inbound {
    /// The URL the requests go to.
    pub post_url: String,
    /// The URL the signature covers: the webhook URL under the server's
    /// public URL, which is what a carrier calls and so what it signs.
    pub signed_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The business number the texts are sent to.
    pub to: String,
    /// The outside numbers, by sender number.
    pub externals: Vec<String>,
    pub run: u64,
    /// Every `repost_every`-th webhook is posted a second time (0: none).
    pub repost_every: u64,
}

impl Inbound {
    /// The form fields of the webhook carrying `stamp`, message `index` of its phase.
    pub fn fields(&self, stamp: &Stamp, index: u64) -> Vec<(String, String)> {
        let sid = message_sid(self.run, stamp.phase, index);
        let from = self
            .externals
            .get(stamp.sender as usize)
            .cloned()
            .unwrap_or_default();
        vec![
            ("ToCountry".into(), "US".into()),
            ("SmsMessageSid".into(), sid.clone()),
            ("NumMedia".into(), "0".into()),
            ("SmsSid".into(), sid.clone()),
            ("SmsStatus".into(), "received".into()),
            ("Body".into(), stamp.text()),
            ("To".into(), self.to.clone()),
            ("NumSegments".into(), "1".into()),
            ("MessageSid".into(), sid),
            ("AccountSid".into(), self.account_sid.clone()),
            ("From".into(), from),
            ("ApiVersion".into(), "2010-04-01".into()),
        ]
    }

    /// The `X-Twilio-Signature` of a webhook with these fields.
    pub fn signature(&self, fields: &[(String, String)]) -> String {
        switchboard_carriers::twilio::signature(&self.auth_token, &self.signed_url, fields)
    }

    /// Whether message `index` is also posted a second time.
    pub fn reposts(&self, index: u64) -> bool {
        self.repost_every > 0 && index % self.repost_every == self.repost_every / 2
    }
}

/// How the second posts of a phase were answered.
#[derive(Debug, Default)]
pub struct Reposts {
    posted: AtomicU64,
    accepted: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
}

/// The second posts of a phase, as reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepostReport {
    /// Webhooks posted a second time with the same `MessageSid`.
    pub posted: u64,
    /// Of those, answered 200 as the first was.
    pub accepted: u64,
    /// The others, by answer.
    pub refused: BTreeMap<String, u64>,
}

impl Reposts {
    pub fn record(&self, outcome: &SendOutcome) {
        self.posted.fetch_add(1, Ordering::Relaxed);
        let reason = match outcome {
            SendOutcome::Acked => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                return;
            }
            SendOutcome::Refused(reason) | SendOutcome::Transport(reason) => reason,
        };
        let mut refused = match self.refused.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *refused.entry(reason.clone()).or_insert(0) += 1;
    }

    pub fn report(&self) -> RepostReport {
        RepostReport {
            posted: self.posted.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: match self.refused.lock() {
                Ok(guard) => guard.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn inbound() -> Inbound {
        Inbound {
            post_url: "http://127.0.0.1:8080/webhooks/twilio/3/messages".into(),
            signed_url: "http://127.0.0.1:8080/webhooks/twilio/3/messages".into(),
            account_sid: format!("AC{}", "0".repeat(32)),
            auth_token: "token".into(),
            to: "+14155550199".into(),
            externals: external_numbers(3, "+14155550199").expect("three numbers"),
            run: 1_790_000_000,
            repost_every: 1000,
        }
    }

    #[test]
    fn outside_numbers_are_distinct_valid_and_never_the_business_number() {
        let business = "+14155550150";
        let numbers = external_numbers(MAX_EXTERNALS - 1, business).expect("numbers");
        assert_eq!(
            numbers.iter().collect::<HashSet<_>>().len(),
            MAX_EXTERNALS - 1
        );
        assert!(!numbers.iter().any(|n| n == business));
        for number in &numbers {
            let parsed = switchboard_domain::phone::E164::parse_strict(number);
            assert!(parsed.is_ok(), "{number} is not a valid number: {parsed:?}");
        }
        assert!(external_numbers(MAX_EXTERNALS, business).is_err());
        assert!(external_numbers(0, business).is_err());
    }

    #[test]
    fn message_ids_look_like_twilios_and_differ_per_message_and_phase() {
        let sid = message_sid(1_790_000_000, 501, 42);
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(sid, message_sid(1_790_000_000, 501, 43));
        assert_ne!(sid, message_sid(1_790_000_000, 502, 42));
        assert_ne!(sid, message_sid(1_790_000_001, 501, 42));
    }

    #[test]
    fn a_webhook_is_signed_as_the_server_checks_it() {
        let inbound = inbound();
        let stamp = Stamp {
            run: inbound.run,
            phase: 501,
            sender: 2,
            seq: 7,
            scheduled_unix_nanos: 1,
        };
        let fields = inbound.fields(&stamp, 23);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("From"), Some(inbound.externals[2].as_str()));
        assert_eq!(field("To"), Some("+14155550199"));
        assert_eq!(field("Body").and_then(Stamp::parse), Some(stamp));
        assert_eq!(field("NumMedia"), Some("0"));
        let sid = message_sid(inbound.run, 501, 23);
        assert_eq!(field("MessageSid"), Some(sid.as_str()));
        let signature = inbound.signature(&fields);
        assert!(
            switchboard_carriers::twilio::verify(
                "token",
                &inbound.signed_url,
                &fields,
                Some(&signature)
            )
            .is_ok()
        );
        assert!(
            switchboard_carriers::twilio::verify(
                "token",
                "http://127.0.0.1:8081/webhooks/twilio/3/messages",
                &fields,
                Some(&signature)
            )
            .is_err()
        );
    }

    #[test]
    fn one_webhook_in_a_thousand_is_posted_twice() {
        let inbound = inbound();
        let reposted = (0..10_000).filter(|&i| inbound.reposts(i)).count();
        assert_eq!(reposted, 10);
        let never = Inbound {
            repost_every: 0,
            ..inbound
        };
        assert!(!(0..10_000).any(|i| never.reposts(i)));
    }

    #[test]
    fn second_posts_are_counted_by_answer() {
        let reposts = Reposts::default();
        reposts.record(&SendOutcome::Acked);
        reposts.record(&SendOutcome::Refused("http 403".into()));
        reposts.record(&SendOutcome::Acked);
        let report = reposts.report();
        assert_eq!((report.posted, report.accepted), (3, 2));
        assert_eq!(report.refused.get("http 403"), Some(&1));
    }
}
