-- Artwork sent on the portal answers one art requirement of its job.
ALTER TABLE artwork_uploads ADD COLUMN requirement_id TEXT;
CREATE INDEX artwork_uploads_job ON artwork_uploads(client_id, job_id);
