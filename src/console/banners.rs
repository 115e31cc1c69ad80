//! `/staff/banners`: compose a stop-press banner with a preview of how it looks in the email
//! digest, in chat and on the portal (and, for an urgent one, whom it reaches at once); post,
//! list and retract. The same rules as `cport banner post` and `POST /api/v1/banners`: all
//! three call `actions::banners`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{Staff, page, without_link_tokens};
use crate::actions::banners::{self, BannerError, BannerInput};
use crate::actions::items::current;
use crate::messages::ChatMessage;
use crate::messages::compose::{Composer, Recipient};
use crate::portal::{CsrfForm, FormData, HoldsCsrf as _, Note, Params, see_other};
use crate::state::AppState;
use crate::store::banners::{NewBanner, list_banners};
use crate::store::contacts::list_active_contacts;
use crate::web::HttpError;
use crate::web::Reply;

/// A time from a `datetime-local` field (read as UTC), or an RFC 3339 one; empty is none.
fn time_field(form: &FormData, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    let v = form.text(name);
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let read = DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
            .map(|t| t.and_utc())
    });
    match read {
        None => Err(format!("{name}: {} is not a date and time (YYYY-MM-DDTHH:MM, UTC)", crate::model::quoted(v))),
        // Read right, but of a year no banner is shown in: said so, not taken for a bad format.
        Some(t) if !(1970..=9999).contains(&t.year()) => {
            Err(format!("{name}: {} is not between the years 1970 and 9999", crate::model::quoted(v)))
        }
        Some(t) => Ok(Some(t)),
    }
}

/// The form as a banner input; a field that cannot be read is an error naming it.
fn input_of(form: &FormData) -> Result<BannerInput, String> {
    // Every client only when the form says so: a banner is never widened to everyone by a
    // choice the form does not offer.
    let clients: Vec<String> = match form.get("audience") {
        Some("chosen") => form
            .text("clients")
            .split([',', ' ', '\n', '\r'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        // Ids typed with "every client" still ticked: which was meant cannot be told.
        Some("all") if !form.text("clients").trim().is_empty() => {
            return Err("clients: ids are given, but the audience is every client: choose \"These clients\" \
                        to send it to them alone, or empty the box"
                .into());
        }
        Some("all") => vec![],
        None | Some("") => return Err("audience: missing: choose every client or these clients".into()),
        Some(other) => return Err(format!("audience: {} is not all or chosen", crate::model::quoted(other))),
    };
    if form.get("audience") == Some("chosen") && clients.is_empty() {
        return Err("clients: name at least one client id, or choose every client".into());
    }
    Ok(BannerInput {
        title: form.text("title"),
        body: form.text("body"),
        severity: form.text("severity"),
        clients,
        starts_at: time_field(form, "starts_at")?,
        expires_at: time_field(form, "expires_at")?,
    })
}

/// What the form showed, to show it again.
fn form_values(form: &FormData) -> Value {
    json!({
        "title": form.text("title"), "body": form.text("body"), "severity": form.text("severity"),
        "audience": form.text("audience"), "clients": form.text("clients"),
        "starts_at": form.text("starts_at"), "expires_at": form.text("expires_at"),
    })
}

async fn list_page(state: &AppState, staff: &Staff, mut ctx: Value, status: StatusCode) -> Reply {
    let now = Utc::now();
    let rows: Vec<Value> = list_banners(&state.db)
        .await?
        .into_iter()
        .map(|(b, clients)| {
            let state = b.state(now);
            let mut v = serde_json::to_value(&b).unwrap_or_default();
            v["clients"] = json!(clients);
            v["live"] = json!(state.live());
            v["waiting"] = json!(state == crate::model::BannerState::Scheduled);
            v
        })
        .collect();
    ctx["banners"] = json!(rows);
    if ctx.get("form").is_none() {
        ctx["form"] = json!({"severity": "info", "audience": "all"});
    }
    let mut resp = page(state, Some(staff), "banners", ctx)?;
    *resp.status_mut() = status;
    Ok(resp)
}

pub async fn list(State(state): State<AppState>, staff: Staff, Params(q): Params<FormData>) -> Reply {
    let note = Note::of(&q).verified(&state, staff.session_key());
    list_page(&state, &staff, json!({"note": note}), StatusCode::OK).await
}

/// The banner checked, or the form again with what is wrong.
async fn checked(state: &AppState, staff: &Staff, form: &FormData) -> Result<Result<NewBanner, Response>, HttpError> {
    let again = |error: String| async move {
        list_page(state, staff, json!({"error": error, "form": form_values(form)}), StatusCode::UNPROCESSABLE_ENTITY)
            .await
    };
    let input = match input_of(form) {
        Ok(i) => i,
        Err(e) => return Ok(Err(again(e).await?)),
    };
    match banners::check(state, &input, &staff.email, Utc::now()).await {
        Ok(b) => Ok(Ok(b)),
        Err(BannerError::Invalid(errs)) => {
            let e = errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            Ok(Err(again(e).await?))
        }
        Err(e @ BannerError::AlreadyPosted(_)) => Ok(Err(again(e.to_string()).await?)),
        Err(BannerError::Store(e)) => Err(e.into()),
    }
}

/// `POST /staff/banners/preview`: the banner as each channel shows it, nothing written.
pub async fn preview(State(state): State<AppState>, CsrfForm(staff, form): CsrfForm<Staff>) -> Reply {
    let banner = match checked(&state, &staff, &form).await? {
        Ok(b) => b,
        Err(resp) => return Ok(resp),
    };
    preview_page(&state, &staff, &form, banner, None).await
}

/// How long an urgent banner's preview may be posted from: an older one (a tab left open, a
/// page come back to) is shown again, with its reach as it is now.
const CONFIRM_MINUTES: i64 = 30;

/// What an urgent banner's preview carries to confirm its post: when it was shown, a nonce,
/// and both signed with the form's fields (`AT.NONCE.TAG`). A banner changed after its preview
/// or a preview older than [`CONFIRM_MINUTES`] is previewed again; each preview posts once,
/// so a form sent twice, or again after the banner was retracted, does not send it again.
fn confirmation(state: &AppState, form: &FormData, now: DateTime<Utc>) -> String {
    use rand::RngCore;
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let signed = format!("{}.{nonce}", now.timestamp());
    let tag = state.signer.tag("banner-confirm", &format!("{signed}.{}", form_values(form)));
    format!("{signed}.{tag}")
}

/// The nonce of a confirmation made for exactly these fields within [`CONFIRM_MINUTES`].
fn confirmed(state: &AppState, form: &FormData, now: DateTime<Utc>) -> Option<String> {
    let given = form.text("confirm");
    let mut parts = given.splitn(3, '.');
    let (at, nonce, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let age = now.timestamp().checked_sub(at.parse::<i64>().ok()?)?;
    let expected = state.signer.tag("banner-confirm", &format!("{at}.{nonce}.{}", form_values(form)));
    ((0..=CONFIRM_MINUTES * 60).contains(&age) && crate::links::constant_time_eq(&expected, tag))
        .then(|| format!("banner-confirm:{nonce}"))
}

/// The form with the banner's preview below it; `note` says why it is shown.
async fn preview_page(
    state: &AppState,
    staff: &Staff,
    form: &FormData,
    banner: NewBanner,
    note: Option<&str>,
) -> Reply {
    let now = Utc::now();
    let row = banner.row(0);
    // Shown as one contact of the audience would get it, with their own items.
    let sample = list_active_contacts(&state.db)
        .await?
        .into_iter()
        .find(|c| banner.audience.is_empty() || banner.audience.contains(&c.client_id));
    let (email, chat) = match &sample {
        None => (None, None),
        Some(c) => {
            let composer = Composer { config: &state.config, env: &state.templates, signer: &state.signer };
            let items = current(state, c).await?;
            let urgent = banner.severity == crate::model::Severity::Urgent;
            // A digest leads with every banner showing for the contact then, not this alone.
            let leading = banners::with_new(state, &banner, &c.client_id, now).await?;
            let email = if urgent {
                composer.compose_banner(&Recipient { contact: c, token: "preview", now }, &row)
            } else {
                composer.compose_digest(&Recipient { contact: c, token: "preview", now }, &items, &leading, None)
            }
            .map_err(|e| HttpError::unexpected(format!("banner preview: {e}")))?;
            let chat: ChatMessage = if urgent {
                banners::urgent_chat(&row, banner.audience.is_empty())
            } else {
                crate::channels::chat::digest_message(state, c, &items, &leading, now)
            };
            (
                Some(json!({"subject": email.subject, "html": without_link_tokens(&email.html),
                            "text": without_link_tokens(&email.text), "to": c.name, "client": c.client_name})),
                Some(json!({"title": chat.title,
                            "lines": chat.lines.iter().map(|l| without_link_tokens(l)).collect::<Vec<_>>()})),
            )
        }
    };
    let reach = banners::reach(state, &banner).await?;
    list_page(
        state,
        staff,
        json!({
            "form": form_values(form), "note": note, "confirm": confirmation(state, form, now),
            "preview": {"banner": row, "email": email, "chat": chat,
                        "urgent": banner.severity == crate::model::Severity::Urgent, "reach": reach,
                        "starts": (banner.starts_at > now).then_some(banner.starts_at)},
        }),
        StatusCode::OK,
    )
    .await
}

/// `POST /staff/banners`: post it.
pub async fn post(State(state): State<AppState>, CsrfForm(staff, form): CsrfForm<Staff>) -> Reply {
    let banner = match checked(&state, &staff, &form).await? {
        Ok(b) => b,
        Err(resp) => return Ok(resp),
    };
    // An urgent banner goes to its whole audience at once: it is posted only from a recent
    // preview of exactly these fields, which shows how many it reaches, and once a preview.
    // A second click while the banner is up is told so by `post` (it names the banner); the
    // preview is marked used once it has posted, so it cannot post again after a retraction.
    let now = Utc::now();
    let mut preview = None;
    if banner.severity == crate::model::Severity::Urgent {
        let Some(nonce) = confirmed(&state, &form, now) else {
            let note = "An urgent banner is sent at once: check its reach below, then post it.";
            return preview_page(&state, &staff, &form, banner, Some(note)).await;
        };
        if crate::store::ledgers::nonce_used(&state.db, &nonce).await? {
            return Err(HttpError::Conflict(
                "This preview was posted already: the banners list shows it. To send the banner again, preview it again."
                    .into(),
            ));
        }
        preview = Some(nonce);
    }
    let input = input_of(&form).map_err(HttpError::Invalid)?;
    match banners::post(&state, input, &staff.email, now).await {
        Ok(p) => {
            if let Some(nonce) = &preview {
                crate::store::ledgers::use_nonce(&state.db, nonce, now).await?;
            }
            staff.record(&state, "posted banner", &format!("{} ({})", p.id, form.text("title").trim())).await;
            let note = if p.queued > 0 {
                format!("Banner {} posted; {} message(s) queued to its audience.", p.id, p.queued)
            } else {
                format!("Banner {} posted.", p.id)
            };
            Ok(see_other(&state, staff.session_key(), "/staff/banners", &note))
        }
        Err(BannerError::Invalid(errs)) => {
            Err(HttpError::Invalid(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        }
        Err(e @ BannerError::AlreadyPosted(_)) => Err(HttpError::Conflict(e.to_string())),
        Err(BannerError::Store(e)) => Err(e.into()),
    }
}

/// `POST /staff/banners/{id}/retract`.
pub async fn retract(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(staff, _): CsrfForm<Staff>,
) -> Reply {
    let id: i64 = id.parse().map_err(|_| HttpError::NotFound)?;
    let note = match banners::retract(&state, id, Utc::now()).await? {
        banners::Retraction::Done => {
            staff.record(&state, "retracted banner", &id.to_string()).await;
            format!("Banner {id} retracted.")
        }
        banners::Retraction::Already(at) => {
            format!("Banner {id} was retracted already, at {} UTC.", at.format("%Y-%m-%d %H:%M"))
        }
        banners::Retraction::Missing => return Err(HttpError::NotFound),
    };
    Ok(see_other(&state, staff.session_key(), "/staff/banners", &note))
}
