-- Indexes for reads and sweeps that grow with history: the chase list's "replied" column
-- reads each contact's latest processed reply, and every scheduler tick removes the chat
-- codes and update ids past their age.
CREATE INDEX inbound_messages_contact ON inbound_messages(contact_id, disposition, received_at);
CREATE INDEX chat_updates_seen ON chat_updates(seen_at);
CREATE INDEX chat_codes_expires ON chat_codes(expires_at);
