-- Outbound media uploads (POST /v1/media): files a business sends, encrypted under the account's data key
-- (filename and content, each bound to its row) and kept as long as Meta keeps uploaded media, 30 days.
-- data_key_id names the key explicitly so the rows stay readable should the account key ever be replaced.
CREATE TABLE uploads (
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    data_key_id  uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'document', 'sticker')),
    mime_type    text NOT NULL,
    filename_enc bytea,
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    sha256       text NOT NULL,
    content_enc  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, data_key_id) REFERENCES data_keys (account_id, id)
);
-- Ciphertext does not compress: spare TOAST a compression attempt over up to 100 MB on every insert.
ALTER TABLE uploads ALTER COLUMN content_enc SET STORAGE EXTERNAL;
-- The purge of expired uploads walks this.
CREATE INDEX uploads_expiry ON uploads (expires_at);
