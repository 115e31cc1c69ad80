//! Files attached to a reply: artwork for the job whose reminder was answered.

use chrono::{DateTime, Utc};
use mail_parser::{MessagePart, MimeHeaders};

use crate::actions::artwork::{self, Upload};
use crate::actions::enquiry::{Answer, Context, Section};
use crate::actions::{ActionError, Actor, Unit};
use crate::services::Services;
use crate::store::StoreError;

/// A message's signature or its signer's key (S/MIME's `smime.p7s`, OpenPGP's
/// `signature.asc` and the `OpenPGP_0x….asc` key Thunderbird adds): the mail program adds
/// it to every message it signs, so it is no file the sender sent, and an answer about
/// artwork refusing it would puzzle them.
pub(super) fn is_signature(a: &MessagePart<'_>) -> bool {
    const TYPES: [&str; 4] = ["pkcs7-signature", "x-pkcs7-signature", "pgp-signature", "pgp-keys"];
    let signature_type = a.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("application")
            && c.subtype().is_some_and(|s| TYPES.iter().any(|t| s.eq_ignore_ascii_case(t)))
    });
    let signature_name = a.attachment_name().is_some_and(|n| n.trim().to_ascii_lowercase().ends_with(".p7s"));
    signature_type || signature_name
}

/// Files attached to a reply about missing artwork (A4) go to the artwork action.
///
/// A file is a part marked as an attachment, or any part with a file name that the text of
/// the message does not show: mail programs send a PDF or a picture `inline` with its name, or
/// with only a name in its type, and such a file is as much sent as an attached one. A part
/// the message's HTML shows by its `cid:` (a signature's logo, a picture pasted into the
/// text) is part of the text, not a file sent; an answer about artwork names it, so that a
/// picture meant as artwork is never passed over in silence.
pub(super) async fn store_attachments(
    state: &Services,
    unit: &mut Unit,
    msg: &mail_parser::Message<'_>,
    actor: &Actor,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Option<Answer>, StoreError> {
    // The `cid:` references of the HTML, read once: looking each part up in the whole HTML
    // would cost parts × HTML, minutes for a large message of many parts.
    let shown: std::collections::HashSet<&str> = msg
        .html_bodies()
        .filter_map(|p| p.text_contents())
        .flat_map(|h| h.split("cid:").skip(1))
        .map(|after| after.split(['"', '\'', ' ', '>', ')', '\r', '\n']).next().unwrap_or(""))
        .collect();
    let in_text = |a: &MessagePart<'_>| {
        a.content_id().is_some_and(|id| shown.contains(id.trim().trim_start_matches('<').trim_end_matches('>')))
    };
    let mut files: Vec<Upload<'_>> = Vec::new();
    let mut pictures: Vec<String> = Vec::new();
    for a in msg.attachments().filter(|a| !is_signature(a)) {
        let attached = a.content_disposition().is_some_and(|d| d.is_attachment());
        let named = a.attachment_name().is_some_and(|n| !n.trim().is_empty());
        if !attached && in_text(a) {
            let name = a.attachment_name().map_or_else(|| "a picture".to_string(), crate::model::one_line);
            pictures.push(name);
        } else if attached || named {
            // A file sent without a name is kept in the list, so the answer says why it was
            // not taken rather than passing it over in silence.
            files.push(Upload {
                name: a.attachment_name().unwrap_or_default().to_string(),
                content_type: a
                    .content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                    .unwrap_or_default(),
                bytes: a.contents(),
                damaged: super::mime::damaged(msg, a),
            });
        }
    }
    let about_art = ctx.art_job.is_some();
    let pictures_note = (about_art && !pictures.is_empty()).then(|| {
        let (names, were) = match pictures.len() {
            1 => (crate::model::shown(&pictures[0], 60), "was"),
            n => (format!("{n} pictures ({})", crate::model::shown(&pictures.join(", "), 120)), "were"),
        };
        format!(
            "{names} in the text of your message {were} not taken as artwork (a signature's logo looks the same): attach the file to send it."
        )
    });
    if files.is_empty() {
        return Ok(pictures_note.map(|note| Answer::error("ARTWORK", note)));
    }
    let Some(job_id) = &ctx.art_job else {
        return Ok(Some(Answer::error(
            "ARTWORK",
            "Attachments were not kept: the message you replied to asks for no artwork, or for more than one \
             job's. Reply with the file to a message about that one job's artwork, or upload it on the portal.",
        )));
    };
    // Artwork is a change, as a decision is: an email too old to decide from keeps none.
    if !ctx.may_decide {
        return Ok(Some(Answer::error(
            "ARTWORK",
            format!(
                "Attachments were not kept: this email is too old to send artwork by. Upload the file on job \
                 {job_id}'s page in the portal (reply LINK for a fresh link)."
            ),
        )));
    }
    let mut answer = match artwork::upload(state, unit, actor, job_id, None, &files, now).await {
        Ok(a) => a,
        Err(ActionError::Store(e)) => return Err(e),
        Err(e) => Answer::error("ARTWORK", e.to_string()),
    };
    if let Some(note) = pictures_note {
        answer.sections.push(Section { lines: vec![note], ..Default::default() });
    }
    Ok(Some(answer))
}
