//! Texting customers: opening an SMS conversation, and what a text costs.
//! Sending goes through `messaging::post_message` like any message; the
//! store queues its texts for the outbox worker.

use super::ServiceResult;
use crate::app::App;
use switchboard_domain::NumberId;
use switchboard_domain::phone::E164;
use switchboard_domain::sms::{self, Segments};
use switchboard_store::{Committed, Extension, OpenSms, OpenedSms, Org, Refusal, StoreError};

/// The SMS conversation between one of `me`'s business numbers (`from`, or
/// its default number) and `to`, typed as the user wrote it and read with
/// the organization's country.
pub async fn open(
    app: &App,
    me: &Extension,
    org: &Org,
    to: &str,
    from: Option<NumberId>,
) -> ServiceResult<Committed<OpenedSms>> {
    let to = E164::parse(to, org.default_country).map_err(|mut e| {
        e.field = "to";
        e
    })?;
    let from = match from {
        Some(id) => id,
        None => app
            .store
            .numbers_of(me.id)
            .await?
            .into_iter()
            .find(|n| n.default)
            .map(|n| n.number.id)
            .ok_or(StoreError::Refused(Refusal::NoSmsNumber))?,
    };
    Ok(app
        .store
        .open_sms(OpenSms {
            org: org.id,
            me: me.id,
            from,
            to,
            now: app.clock.now(),
        })
        .await?)
}

/// How `text` goes out as SMS: the composer's counter asks this, so that
/// the client and the server count with the same rule.
pub fn segments(text: &str) -> Segments {
    sms::segments(text)
}
