-- The client's credit limit, when TOT sends one with the account summary (minor units).
ALTER TABLE account_summaries ADD COLUMN credit_limit BIGINT;
