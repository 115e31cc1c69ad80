//! Action items, digests, instant alerts and their schedule.

pub mod alerts;
pub mod scheduler;

/// What a pass over many contacts (digests, alerts) does with one contact's store failure:
/// it goes on past that contact, logged and counted in `cport_contact_failures_total`, so
/// one row the store cannot give (a hand edit) does not hold up every other contact each
/// tick. A store that cannot be reached at all ends the pass.
pub(crate) fn skip_contact(
    pass: &'static str,
    contact: &str,
    e: crate::store::StoreError,
) -> Result<(), crate::store::StoreError> {
    if e.is_unavailable() {
        return Err(e);
    }
    contact_failed(pass, contact, &e);
    Ok(())
}

/// Logs and counts a contact a pass could not serve (the store failed on it, its schedule is
/// refused, its message does not render): one log line and `cport_contact_failures_total`.
pub(crate) fn contact_failed(pass: &'static str, contact: &str, error: &dyn std::fmt::Display) {
    tracing::error!(pass, contact, error = %error, "a contact was skipped in this pass; the others go on");
    metrics::counter!("cport_contact_failures_total", "pass" => pass).increment(1);
}
