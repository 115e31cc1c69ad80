//! Provider adapters. Each turns an outbox row into a delivery on its channel.

pub mod chat;
pub mod discord;
pub mod email;
pub mod imap;
pub mod inbound;
pub mod telegram;
pub mod webhook;

pub use crate::messages::SendError;
