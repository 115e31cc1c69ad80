//! Action items, digests and their schedule.

pub mod items;
pub mod schedule;
