-- A login between initiate and complete now travels in its sealed state
-- parameter, so nothing is stored when it starts. What is stored is its
-- single use: the first completion claims its id. Keyed by expiry first so
-- housekeeping deletes expired claims by a range of the key.
DROP TABLE login_transactions;
CREATE TABLE login_claims (
    expires_at BIGINT NOT NULL,
    login_id TEXT NOT NULL,
    PRIMARY KEY (expires_at, login_id)
);
