//! Artwork a client sends for a job whose art TOT is waiting for.

use chrono::{DateTime, Utc};
use sha2::Digest;

use super::enquiry::{Answer, Section};
use super::{ActionError, Actor, found};
use crate::services::Services;
use crate::store::{StoreError, inbound, jobs};

/// One file as it arrived.
pub struct Upload<'a> {
    pub name: String,
    pub content_type: String,
    pub bytes: &'a [u8],
    /// The file arrived damaged (an attachment whose encoding could not be read): refused
    /// by name, and nothing is marked received for it.
    pub damaged: bool,
}

/// The longest file name kept (it is shown in answers, the change feed and on disk).
const NAME_MAX: usize = 200;

/// Files one upload may hold, by the portal or by email: each is written, recorded, put in
/// the change feed and listed in the answer.
pub const MAX_FILES: usize = 10;

/// Whether `actor` may send artwork for a job with `status`: anyone who acts for the client
/// (not a read-only role, not a delegate), for a job still at TOT (`JobStatus::OPEN`, the
/// jobs whose missing art is an item to chase). The job page offers its forms by it;
/// [`upload`] refuses by it.
pub fn may_upload(actor: &Actor, status: crate::model::JobStatus) -> bool {
    actor.may_act() && status.is_open()
}

/// Keeps the files of accepted types and sizes under `data_dir/uploads/artwork/JOB/`, marks
/// the art they answer received (one requirement, or every one of the job's when
/// `requirement` is `None`, as for an email reply) and records `artwork_uploaded`; the
/// answer lists each file, kept or refused and why.
pub async fn upload(
    state: &Services,
    unit: &mut super::Unit,
    actor: &Actor,
    job_id: &str,
    requirement: Option<&str>,
    files: &[Upload<'_>],
    now: DateTime<Utc>,
) -> Result<Answer, ActionError> {
    if !actor.may_act() {
        return Err(ActionError::Forbidden(format!("Your role ({}) may not send artwork.", actor.role)));
    }
    let job = found(jobs::get_job(&state.db, actor.client_id(), job_id).await, || format!("job {job_id}"))?;
    if !may_upload(actor, job.status) {
        return Err(ActionError::Conflict(format!("job {job_id} is {}; it takes no artwork", job.status.words())));
    }
    if let Some(r) = requirement {
        let known = inbound::art_requirements(&state.db, actor.client_id(), job_id).await?;
        if !known.iter().any(|k| k.id == r) {
            let no = format!("job {job_id} has no art requirement {}", crate::model::quoted(r));
            return Err(ActionError::invalid("requirement", no));
        }
    }
    if files.is_empty() {
        return Err(ActionError::invalid("files", "choose at least one file to send"));
    }
    if files.len() > MAX_FILES {
        let most = format!("{} files were sent; at most {MAX_FILES} go at once", files.len());
        return Err(ActionError::invalid("files", most));
    }
    let cfg = &state.config.inbound;
    // One folder per job, its own whatever an id may hold (ids are checked as they arrive,
    // but a folder name is no place to rely on that).
    let dir = state.config.data_dir.join("uploads").join("artwork").join(crate::model::folder_name(job_id));
    // Written to disk first, outside the transaction (a SQLite write transaction holds every
    // writer of the service while it is open); then recorded, or found sent already.
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    for f in files {
        // The name is shown in answers and the change feed: no control characters.
        let name = crate::model::one_line(&f.name);
        // The letters after the last dot are its type; a name without a dot has none. `.pdf`
        // alone, or after characters that print as nothing, is a type without a name.
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
        let ext = ext.to_ascii_lowercase();
        if crate::model::blank(stem) {
            refused.push(format!(
                "a file without a name: name it with its type, like logo.pdf ({})",
                cfg.artwork_types.join(", ")
            ));
            continue;
        }
        if name.chars().count() > NAME_MAX {
            let shown = crate::model::shortened(&name, 40);
            refused.push(format!("{shown}: the file name is longer than {NAME_MAX} characters"));
            continue;
        }
        let bytes = f.bytes;
        if f.damaged {
            refused.push(format!("{name}: the file arrived damaged (its encoding could not be read); attach it again"));
            continue;
        }
        if bytes.is_empty() {
            refused.push(format!("{name}: the file is empty"));
            continue;
        }
        if ext.is_empty() {
            refused.push(format!("{name}: the name has no type, like .pdf ({})", cfg.artwork_types.join(", ")));
            continue;
        }
        if !cfg.artwork_types.iter().any(|t| t.eq_ignore_ascii_case(&ext)) {
            refused.push(format!("{name}: .{ext} files are not accepted ({})", cfg.artwork_types.join(", ")));
            continue;
        }
        if bytes.len() as u64 > cfg.max_attachment_bytes {
            refused.push(format!(
                "{name}: larger than {}, the most one file may be",
                crate::model::size_text(cfg.max_attachment_bytes)
            ));
            continue;
        }
        if crate::model::filetype::content_matches(&ext, bytes) == Some(false) {
            refused.push(format!("{name}: its content is not a .{ext} file; send the file itself"));
            continue;
        }
        let safe = crate::model::safe_file_name(&name);
        // Named by its content and name alone, no time: a retry of a message whose unit
        // failed after the file was written (the store busy, the process killed; the MTA
        // tries again later) writes the same file again rather than leaving the first
        // behind with no record, and two uploads of different files never meet.
        let digest: String = sha2::Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
        let tail = format!("{digest}-{safe}");
        let path = dir.join(&tail).display().to_string();
        // cport's disk (full, failing, a folder not the service's to write), not the sender's
        // file: nothing of the upload is recorded, and it is tried again (the MTA's retry,
        // the portal's "try again in a moment") rather than answered as received-but-lost
        // and never sent again. A file of it written before is named by its content, so the
        // retry writes it again in place and leaves nothing unrecorded behind.
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| write_whole(&path, bytes)) {
            tracing::error!(error = %e, path, "artwork could not be stored; the upload is refused for now");
            return Err(ActionError::Store(StoreError::Disk(format!("{path}: {e}"))));
        }
        // The type its name and content agree on; what the sender declared only for a type
        // cport does not know.
        let ctype = crate::model::filetype::media_type_of(&ext)
            .map_or_else(|| crate::model::media_type(&f.content_type), str::to_string);
        stored.push((name, ctype, bytes.len() as i64, path, tail));
    }
    let mut kept = Vec::new();
    let mut again = Vec::new();
    if !stored.is_empty() {
        let tx = unit.tx().await?;
        // Uploads for the job wait for each other here, so one sent twice at once is seen.
        jobs::lock_job(tx, job_id).await?;
        let since = now - chrono::Duration::minutes(crate::model::SAME_AGAIN_MINUTES);
        for (name, ctype, size, path, tail) in stored {
            let file = inbound::NewArtwork {
                client_id: actor.client_id(),
                job_id,
                requirement_id: requirement,
                contact_id: &actor.contact.id,
                file_name: &name,
                content_type: &ctype,
                size,
                path: &path,
            };
            // Kept for the job in the last minutes, or earlier in this upload: sent again.
            if let Some(at) = inbound::same_artwork(tx, &file, &tail, since).await? {
                again.push(format!(
                    "{name}: received already, at {} UTC (the same file); kept once",
                    at.format("%H:%M")
                ));
                continue;
            }
            inbound::insert_artwork(tx, &file, now).await?;
            kept.push((name, ctype, size, path));
        }
    }
    if !kept.is_empty() {
        let tx = unit.tx().await?;
        crate::actions::record(
            state,
            tx,
            crate::model::ChangeKind::ArtworkUploaded,
            actor,
            job_id,
            // `name` is the sender's, as sent (it may say `../x.pdf`): `stored_as` is the
            // safe name the file is kept under, for a consumer that saves files by name.
            &serde_json::json!({"job_id": job_id, "requirement_id": requirement, "files": kept.iter().map(|(n, t, s, p)| serde_json::json!({"name": n, "type": t, "bytes": s, "stored_as": std::path::Path::new(p).file_name().map(|f| f.to_string_lossy())})).collect::<Vec<_>>(), "channel": actor.channel}),
            now,
        )
        .await?;
    }
    let mut lines: Vec<String> =
        kept.iter().map(|(n, _, s, _)| format!("{n} ({}): received", crate::model::size_text(*s as u64))).collect();
    lines.extend(again.iter().cloned());
    lines.extend(refused.iter().cloned());
    let mut a = Answer {
        command: "ARTWORK".into(),
        ok: refused.is_empty(),
        title: format!("Artwork for job {job_id}:"),
        sections: vec![Section { lines, ..Default::default() }],
    };
    if kept.is_empty() && again.is_empty() {
        a.title = format!("No artwork kept for job {job_id}:");
    }
    Ok(a)
}

/// Writes `bytes` to `path` whole or not at all: to a file beside it first, on the disk
/// before it is renamed over `path`, so a file a record already names (the same content sent
/// again) is never seen half-written, not even after a power cut.
fn write_whole(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let part = format!("{path}.part-{}-{:x}", std::process::id(), rand::random::<u64>());
    let written = std::fs::File::create(&part).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    written.and_then(|_| std::fs::rename(&part, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&part);
    })
}

/// Removes stored artwork files whose rows are gone (a client TOT deleted): one already gone
/// is no matter; one that cannot be removed is said in the log and left.
pub fn remove_files(files: &[String]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file, error = %e, "an artwork file whose record is gone could not be removed");
        }
    }
}
