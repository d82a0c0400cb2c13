-- A login between initiate and complete now travels in its sealed state
-- parameter, so nothing is stored when it starts. What is stored is its
-- single use: the first completion claims its id. login_transactions is no
-- longer written or read; it stays until a later release, so that nodes of
-- the previous release, still running during a rolling upgrade on one
-- PostgreSQL, keep serving until they are replaced (a login started on one
-- release and completed on the other fails as unknown). Keyed by expiry first so
-- housekeeping deletes expired claims by a range of the key.
CREATE TABLE login_claims (
    expires_at BIGINT NOT NULL,
    login_id TEXT NOT NULL,
    PRIMARY KEY (expires_at, login_id)
);
