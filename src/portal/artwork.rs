//! Artwork on the job page: the art a job waits for, a form per requirement to send files
//! (drag and drop, with a plain file input beneath), and the files the client sent, for
//! download. Sending goes through the same action as an email attachment.

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{Value, json};

use super::session::Session;
use super::{HttpError, with_note};
use crate::actions::ActionError;
use crate::actions::artwork::Upload;
use crate::state::AppState;
use crate::store::{StoreError, inbound};
use crate::web::Reply;

use crate::actions::artwork::MAX_FILES;

/// The body limit of `POST /jobs/{id}/artwork`: [`MAX_FILES`] of the largest a file may be.
pub fn body_limit(state: &AppState) -> usize {
    let per_file = state.config.inbound.max_attachment_bytes.saturating_add(64 * 1024);
    usize::try_from(per_file.saturating_mul(MAX_FILES as u64)).unwrap_or(usize::MAX)
}

/// What the job page shows about artwork (the caller has checked the job is the client's).
pub async fn art_json(
    state: &AppState,
    session: &Session,
    job_id: &str,
    status: crate::model::JobStatus,
) -> Result<Value, HttpError> {
    let client = session.actor.client_id();
    let requirements = inbound::art_requirements(&state.db, client, job_id).await?;
    let files = inbound::list_artwork(&state.db, client, job_id).await?;
    let cfg = &state.config.inbound;
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"id": f.id, "name": f.file_name, "size": crate::model::size_text(f.size_bytes.max(0) as u64),
                   "sent_by": f.sent_by, "at": f.created_at.to_rfc3339(),
                   "requirement_id": f.requirement_id})
        })
        .collect();
    Ok(json!({
        "requirements": requirements,
        // Art is waited for while the job is at TOT, as the item that chases it says.
        "open": status.is_open(),
        "waiting": if status.is_open() { requirements.iter().filter(|r| !r.art_received).count() } else { 0 },
        "files": files,
        "may_upload": crate::actions::artwork::may_upload(&session.actor, status),
        "types": cfg.artwork_types,
        "accept": cfg.artwork_types.iter().map(|t| format!(".{t}")).collect::<Vec<_>>().join(","),
        "max_bytes": cfg.max_attachment_bytes,
        "max_text": crate::model::size_text(cfg.max_attachment_bytes),
        "max_files": MAX_FILES,
    }))
}

/// One file field as read: at most one byte more than the limit is kept, enough for the
/// action to refuse it as too large without holding all of it.
struct Part {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
}

/// `POST /jobs/{id}/artwork` (multipart): `csrf`, `requirement`, one or more `files`.
pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    Path(job_id): Path<String>,
    mut form: Multipart,
) -> Reply {
    // A delegate's session is for the one visual it was sent.
    super::pages::no_delegation(&session)?;
    // Every answer is the job page at its artwork, with a note saying what happened.
    let back = |note: &str| {
        axum::response::Redirect::to(&format!(
            "{}#artwork",
            with_note(&state, &session.token_hash, &format!("/jobs/{}", crate::model::segment(&job_id)), note)
        ))
        .into_response()
    };
    let keep = state.config.inbound.max_attachment_bytes.saturating_add(1) as usize;
    let (mut csrf, mut requirement, mut parts) = (None, None, Vec::<Part>::new());
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // Too large in all, or cut off: nothing was done.
                tracing::info!(error = %e, "artwork upload refused while reading");
                // The multipart reader refuses a part whose headers hold a control character,
                // which a file name is the only place for: said so, by the name's field.
                let why = match e.body_text() {
                    t if t.contains("headers") => {
                        "a file's name could not be read; rename it without control characters".to_string()
                    }
                    t => t,
                };
                let note = format!(
                    "Nothing was sent: files: the upload could not be read ({why}). Send at most {MAX_FILES} files of up to {} each.",
                    crate::model::size_text(state.config.inbound.max_attachment_bytes)
                );
                return Ok(back(&note));
            }
        };
        // One value a field, as every other form takes it: a second would silently win.
        let twice = |field: &str| format!("Nothing was sent: {field}: is given twice; send it once.");
        match field.name() {
            Some("csrf") if csrf.is_some() => return Ok(back(&twice("csrf"))),
            Some("requirement") if requirement.is_some() => return Ok(back(&twice("requirement"))),
            Some("csrf") => csrf = Some(field.text().await.unwrap_or_default()),
            Some("requirement") => requirement = Some(field.text().await.unwrap_or_default()),
            Some("files") => {
                let name = field.file_name().unwrap_or("").to_string();
                let content_type = field.content_type().unwrap_or("application/octet-stream").to_string();
                let mut bytes = Vec::new();
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = keep.saturating_sub(bytes.len());
                            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let note = format!("Nothing was sent: the upload was cut off ({}).", e.body_text());
                            return Ok(back(&note));
                        }
                    }
                }
                // A file input left empty sends one part with no name and no bytes.
                if !name.is_empty() || !bytes.is_empty() {
                    parts.push(Part { name, content_type, bytes });
                }
            }
            _ => {}
        }
    }
    session.check_csrf(csrf.as_deref())?;
    // The page's forms each name the requirement their files answer (an email reply, which
    // cannot, answers every one of the job's).
    let Some(requirement) = requirement.filter(|r| !r.is_empty()) else {
        return Ok(back("Nothing was sent: requirement: say which of the job's artwork the files are for."));
    };
    let files: Vec<Upload<'_>> = parts
        .iter()
        .map(|p| Upload { name: p.name.clone(), content_type: p.content_type.clone(), bytes: &p.bytes, damaged: false })
        .collect();
    let mut unit = crate::actions::Unit::new(&state);
    let now = Utc::now();
    let result =
        crate::actions::artwork::upload(&state, &mut unit, &session.actor, &job_id, Some(&requirement), &files, now)
            .await;
    match result {
        Ok(answer) => {
            unit.commit().await?;
            let lines: Vec<String> = answer.sections.iter().flat_map(|s| s.lines.iter().cloned()).collect();
            Ok(back(&format!("{} {}", answer.title, lines.join("; "))))
        }
        Err(e) => {
            unit.rollback().await?;
            match e {
                ActionError::Invalid { field, message } => Ok(back(&format!("Nothing was sent: {field}: {message}."))),
                other => Err(other.into()),
            }
        }
    }
}

/// `GET /jobs/{id}/artwork/{file}`: one of the client's own artwork files, as a download.
pub async fn download(
    State(state): State<AppState>,
    session: Session,
    Path((job_id, file)): Path<(String, i64)>,
) -> Reply {
    if !session.actor.may_see_jobs() || session.actor.delegation.is_some() {
        return Err(HttpError::NotFound);
    }
    let row = match inbound::get_artwork(&state.db, session.actor.client_id(), &job_id, file).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Err(HttpError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let bytes = tokio::fs::read(&row.path).await.map_err(|e| {
        tracing::error!(error = %e, path = %row.path, "an artwork file could not be read");
        HttpError::NotFound
    })?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    // Served as bytes to save, never as a page of the portal's origin.
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&disposition(&row.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// A download's `Content-Disposition`: an ASCII name for every browser, and the name as
/// uploaded for those that read RFC 6266's `filename*` (all current ones).
fn disposition(file_name: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');
    let ascii = crate::model::safe_file_name(file_name);
    let line = crate::model::one_line(file_name);
    let named = percent_encoding::utf8_percent_encode(&line, KEEP);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{named}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_download_keeps_its_uploaded_name_for_browsers_that_read_it() {
        let d = super::disposition("résumé 1.pdf");
        assert!(d.starts_with("attachment; filename=\""), "{d}");
        assert!(d.ends_with("; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf"), "{d}");
        assert!(super::disposition("a\"b\r\n.pdf").is_ascii() && !super::disposition("a\"b\r\n.pdf").contains('\n'));
    }
}
