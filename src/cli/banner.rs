//! `cport banner post|list|retract`: stop-press banners from the command line.

use super::*;

pub(crate) async fn banner(state: &AppState, command: BannerCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    match command {
        BannerCommand::Post(a) => {
            let input = crate::actions::banners::BannerInput {
                title: a.title,
                body: a.body,
                severity: a.severity,
                clients: a.clients,
                starts_at: a.starts,
                expires_at: a.expires,
            };
            let posted = match crate::actions::banners::post(state, input, "cli", now).await {
                Ok(p) => p,
                // Named as they are typed here: `--expires`, `--client`, not the API's fields.
                Err(crate::actions::banners::BannerError::Invalid(errs)) => {
                    for e in errs {
                        super::say_error(format_args!("{}: {}", flag_of(&e.field), e.reason));
                    }
                    return Ok(ExitCode::FAILURE);
                }
                Err(e @ crate::actions::banners::BannerError::AlreadyPosted(_)) => {
                    super::say_error(format_args!("{e}"));
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            };
            println!("banner {} posted", posted.id);
            if posted.queued > 0 {
                let d = super::outbox::send_due(state).await?;
                println!("urgent: {} message(s) queued, {} sent now", posted.queued, d.sent);
            }
        }
        BannerCommand::List => {
            let rows = crate::store::banners::list_banners(&state.db).await?;
            println!(
                "{:<5} {:<8} {:<10} {:<17} {:<17} {:<20} TITLE",
                "ID", "SEVERITY", "STATE", "STARTS", "EXPIRES", "AUDIENCE"
            );
            for (b, clients) in rows {
                let st = b.state(now);
                let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
                println!(
                    "{:<5} {:<8} {:<10} {:<17} {:<17} {:<20} {}",
                    b.id,
                    b.severity,
                    st,
                    fmt(b.starts_at),
                    b.expires_at.map(fmt).unwrap_or_else(|| "-".into()),
                    if clients.is_empty() { "all clients".into() } else { clients.join(",") },
                    b.title
                );
            }
        }
        BannerCommand::Retract { id } => {
            use crate::actions::banners::Retraction;
            match crate::actions::banners::retract(state, id, now).await? {
                Retraction::Done => println!("banner {id} retracted"),
                Retraction::Already(at) => {
                    println!("banner {id} was retracted already, at {}", at.format("%Y-%m-%d %H:%M"))
                }
                Retraction::Missing => {
                    super::say_error(format_args!("no banner with id {id}"));
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `banner post` flag a banner field is given by: `expires_at` is `--expires`,
/// `clients[2]` is the third `--client`.
fn flag_of(field: &str) -> String {
    match field.split('[').next().unwrap_or(field) {
        "starts_at" => "--starts".into(),
        "expires_at" => "--expires".into(),
        "clients" => match field.strip_prefix("clients[").and_then(|i| i.trim_end_matches(']').parse::<usize>().ok()) {
            Some(i) => format!("--client (the {} given)", i + 1),
            None => "--client".into(),
        },
        other => format!("--{other}"),
    }
}
