//! Files attached to a reply: artwork for the job whose reminder was answered.

use chrono::{DateTime, Utc};
use mail_parser::MimeHeaders;

use crate::actions::artwork::{self, Upload};
use crate::actions::enquiry::{Answer, Context};
use crate::actions::items::Category;
use crate::actions::{ActionError, Actor, Unit};
use crate::services::Services;
use crate::store::StoreError;

/// Files attached to a reply about missing artwork (A4) go to the artwork action.
pub(super) async fn store_attachments(
    state: &Services,
    unit: &mut Unit,
    msg: &mail_parser::Message<'_>,
    actor: &Actor,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Option<Answer>, StoreError> {
    // Only real attachments: inline pictures (signature logos) are not artwork.
    let files: Vec<Upload<'_>> = msg
        .attachments()
        .filter(|a| a.content_disposition().is_some_and(|d| d.is_attachment()))
        // A file sent without a name is kept in the list, so the answer says why it was not
        // taken rather than passing it over in silence.
        .map(|a| Upload {
            name: a.attachment_name().unwrap_or_default().to_string(),
            content_type: a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_default(),
            bytes: a.contents(),
            damaged: super::mime::damaged(msg, a),
        })
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let Some((Category::AwaitingArt, job_id)) = &ctx.item else {
        return Ok(Some(Answer::error(
            "ARTWORK",
            "Attachments were not kept: reply to the artwork reminder of the job they are for.",
        )));
    };
    match artwork::upload(state, unit, actor, job_id, None, &files, now).await {
        Ok(a) => Ok(Some(a)),
        Err(ActionError::Store(e)) => Err(e),
        Err(e) => Ok(Some(Answer::error("ARTWORK", e.to_string()))),
    }
}
