//! `cport inbound-email`: one reply from the MTA's pipe; the exit code tells the MTA what to do.

use super::*;

/// `cport inbound-email`: the exit code tells the MTA what to do (75 = try again later).
/// sysexits.h: the message cannot be used (the MTA bounces it).
pub(crate) const EX_DATAERR: u8 = 65;
/// sysexits.h: try again later (the MTA keeps the message and retries).
pub(crate) const EX_TEMPFAIL: u8 = 75;

pub(crate) async fn inbound_email(config: Config) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let mut raw = Vec::new();
    let limit = config.inbound.max_bytes;
    if let Err(e) = std::io::stdin().take(limit + 1).read_to_end(&mut raw) {
        super::say_error(format_args!("the message could not be read, try again later: {e}"));
        return Ok(ExitCode::from(EX_TEMPFAIL));
    }
    // A reply for a store that is not there cannot be acted on, and a new empty one would
    // take it as unknown and drop it: a misspelt database_url keeps the mail queued instead.
    if !crate::store::exists(config.database_url.expose()) {
        // No path: a final bounce would carry these words.
        eprintln!(
            "error: the store that database_url names does not exist; the message is kept for a later try (run `cport migrate` as this user to make it)"
        );
        return Ok(ExitCode::from(EX_TEMPFAIL));
    }
    let state =
        match open_state(config).await {
            Ok(s) => s,
            Err(e) => {
                // No path nor store address for the MTA (a final bounce would carry these words
                // to the sender): the store's own words without its address, else a pointer. A
                // person running it by hand, at a terminal, is told all.
                use std::io::IsTerminal;
                let why = match e.downcast_ref::<crate::store::StoreError>() {
                _ if std::io::stderr().is_terminal() => format!("{e:#}"),
                Some(crate::store::StoreError::Open { message, .. }) => format!("store unavailable: {message}"),
                _ => "cport could not start (run `cport inbound-email` by hand, at a terminal, as this user to see why)"
                    .into(),
            };
                super::say_error(format_args!("{why}; try again later"));
                return Ok(ExitCode::from(EX_TEMPFAIL));
            }
        };
    match crate::channels::inbound::handle(&state, &raw, chrono::Utc::now()).await {
        Ok(d) => {
            println!("{}", serde_json::to_string(&d).unwrap_or_default());
            // Send the answer now; a running server would also pick it up (within a second).
            // The message is handled either way: a failure here must not make the MTA bounce
            // it. Only the answer goes: the rest of the outbox is the server's.
            if let Some(key) = crate::channels::inbound::answer_key_of(&raw)
                && let Err(e) = crate::outbox::send_keyed(&state, &key).await
            {
                tracing::warn!(error = %e, "the answer is queued; sending it now failed");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_temporary() => {
            super::say_error(format_args!("try again later: {e}"));
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
        Err(e) => {
            super::say_error(format_args!("{e}"));
            Ok(ExitCode::from(EX_DATAERR))
        }
    }
}
