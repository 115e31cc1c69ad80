//! `cport staff add|list|remove`: TOT's staff accounts for the console at `/staff`.

use super::*;

/// How long a staff password link works.
const LINK_HOURS: i64 = 72;

pub(crate) async fn staff(state: &AppState, command: StaffCommand) -> anyhow::Result<ExitCode> {
    use crate::store::staff as st;
    let now = chrono::Utc::now();
    match command {
        StaffCommand::Add { email } => {
            // The same rule as every address typed elsewhere: one cport can send to, with no
            // character that makes it read other than it is (a direction override).
            let email = crate::actions::typed_email("--email", &email)?.to_lowercase();
            let (id, new) = st::add(&state.db, &email, now).await?;
            let link =
                state.signer.staff_password_url(&state.config.public_url, id, chrono::Duration::hours(LINK_HOURS), now);
            st::audit(&state.db, "cli", if new { "added staff" } else { "issued password link" }, &email, now).await?;
            if new {
                println!("staff account {email} added");
            } else {
                println!(
                    "staff account {email} exists: here is a new password link (its sessions end when it is used)"
                );
            }
            println!("set its password within {LINK_HOURS} hours, once, at:\n{link}");
        }
        StaffCommand::List => {
            let rows = st::list(&state.db).await?;
            println!("{:<40} {:<9} ADDED", "EMAIL", "PASSWORD");
            for r in rows {
                println!(
                    "{:<40} {:<9} {}",
                    r.email,
                    if r.has_password { "set" } else { "not yet" },
                    r.created_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        StaffCommand::Remove { email } => {
            let email = email.trim().to_lowercase();
            if !st::remove(&state.db, &email, now).await? {
                super::say_error(format_args!("--email: no staff account {}", crate::model::quoted(&email)));
                return Ok(ExitCode::FAILURE);
            }
            st::audit(&state.db, "cli", "removed staff", &email, now).await?;
            println!("staff account {email} removed; its sessions are ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}
