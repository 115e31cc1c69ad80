//! `cport digest run`: a pass now, or (`--dry-run`) what each contact would get.

use super::*;
use crate::actions::targets::{targets_by_contact, targets_of, wanted};
use crate::store::settings::{ContactSettings, Sending};

pub(crate) async fn digest_run(state: &AppState, args: &DigestRunArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let report = run_pass(state, now, args.contact.as_deref(), Trigger::Manual { force: args.force }).await.map_err(
        |e| match e {
            PassError::Store(crate::store::StoreError::NotFound) => {
                anyhow::anyhow!(
                    "--contact: no contact with id {}",
                    crate::model::quoted(args.contact.as_deref().unwrap_or(""))
                )
            }
            other => other.into(),
        },
    )?;
    println!(
        "digests: {} queued, {} with nothing to send, {} already sent this period (use --force to resend), {} with email off, {} failed",
        report.queued, report.empty, report.already_decided, report.email_off, report.failed
    );
    let mut sent = None;
    if !args.no_send {
        let d = super::outbox::send_due(state).await?;
        println!("outbox: {} sent, {} to retry, {} dead", d.sent, d.retrying, d.dead);
        super::outbox::say_held(state).await?;
        if state.config.email.transport == crate::config::Transport::File && d.sent > 0 {
            println!("emails written to {}", state.config.mail_dir().display());
        }
        sent = Some(d);
    }
    // The others were queued (and sent), but a run that passed someone over must not look
    // like a clean one to a script or a timer.
    if report.failed > 0 {
        anyhow::bail!("{} digest(s) could not be queued; the log says whose and why", report.failed);
    }
    match sent {
        Some(d) => super::outbox::went_dead(&d),
        None => Ok(()),
    }
}

/// The items each contact's digest would hold: a category they set to "not at all" left out.
pub(crate) async fn dry_run(config: &crate::config::Config, db: &Db, args: &DigestRunArgs) -> anyhow::Result<()> {
    let contacts: Vec<ContactRow> = match &args.contact {
        // Refused as the real run refuses it: digests go to active contacts only.
        Some(id) => vec![super::active_contact(db, id).await?],
        None => list_active_contacts(db).await?,
    };
    let settings = crate::store::settings::list_settings(db).await?;
    let chats = targets_by_contact(config, db).await?;
    let of = |c: &ContactRow| settings.get(&c.id).cloned().unwrap_or_else(|| ContactSettings::defaults(&c.id));
    // The ways the digest would go, as the scheduler picks them.
    let ways = |c: &ContactRow, s: &ContactSettings| -> Vec<&'static str> {
        targets_of(s, chats.get(&c.id), Sending::Digest).iter().map(|t| t.outlet().as_str()).collect()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut cache = ItemCache::new(&contacts);
    if !args.json {
        for c in &contacts {
            let s = of(c);
            print_items(&mut out, c, &ways(c, &s), &wanted(config, &s, cache.for_contact(db, c).await?))?;
        }
        out.flush()?;
        return Ok(());
    }
    // The JSON array is written one contact at a time, so a pass over the whole store never
    // holds every contact's items at once.
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        contact: &'a ContactRow,
        /// `email`, `telegram`, `discord`: empty when no digest would go.
        goes_to: &'a [&'static str],
        items: &'a [ActionItem],
    }
    let mut json = serde_json::Serializer::pretty(&mut out);
    let mut array = serde::Serializer::serialize_seq(&mut json, Some(contacts.len()))?;
    for c in &contacts {
        let s = of(c);
        let items = wanted(config, &s, cache.for_contact(db, c).await?);
        let entry = Entry { contact: c, goes_to: &ways(c, &s), items: &items };
        serde::ser::SerializeSeq::serialize_element(&mut array, &entry)?;
    }
    serde::ser::SerializeSeq::end(array)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

pub(crate) fn print_items(
    out: &mut impl Write,
    c: &ContactRow,
    ways: &[&str],
    items: &[ActionItem],
) -> std::io::Result<()> {
    writeln!(out, "{}  {} <{}> ({}), {}: {} item(s)", c.id, c.name, c.email, c.role, c.client_name, items.len())?;
    if ways.is_empty() {
        writeln!(
            out,
            "  no digest would go: their email is off for digests (or suspended by bounces) and no chat is linked"
        )?;
    } else {
        writeln!(out, "  by {}", ways.join(", "))?;
    }
    let mut last = None;
    for it in items {
        if last != Some(it.category) {
            writeln!(out, "  {} {}", it.category.code(), it.category.heading())?;
            last = Some(it.category);
        }
        let date = it.date.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        let command = it.command.as_deref().unwrap_or("(portal only)");
        writeln!(out, "    {:<10} {:<10} {:<58} {command}", it.id, date, truncate(&it.title, 58))?;
    }
    if items.is_empty() {
        writeln!(out, "    (nothing needs attention; no digest would be sent)")?;
    }
    writeln!(out)
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
