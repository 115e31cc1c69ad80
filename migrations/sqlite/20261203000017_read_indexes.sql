-- Indexes for reads that grow with every client's history: each visual page reads its
-- comments and decisions, the delivery form the client's saved addresses, the basket page the
-- contact's earlier orders, the staff overview the last day's messages and digests, and
-- each chat message the contact TOT's record names for its sender.
CREATE INDEX portal_comments_visual ON portal_comments(visual_id);
CREATE INDEX visual_decisions_visual ON visual_decisions(visual_id);
CREATE INDEX delivery_requests_client ON delivery_requests(client_id, created_at);
CREATE INDEX reseller_orders_contact ON reseller_orders(contact_id);
CREATE INDEX outbox_created ON outbox(created_at);
CREATE INDEX digest_runs_decided ON digest_runs(decided_at);
CREATE INDEX contacts_telegram ON contacts(telegram_chat_id);
CREATE INDEX contacts_discord ON contacts(discord_user_id);
