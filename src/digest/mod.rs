//! Action items, digests, instant alerts and their schedule.

pub mod alerts;
pub mod scheduler;
