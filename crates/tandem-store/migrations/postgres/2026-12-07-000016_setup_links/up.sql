-- Links an app hands a customer's IT admin to set up the customer's own
-- IdP (its sign-in client and its SCIM connection) without an integration
-- key. The token is stored as a hash; a link works until it expires or is
-- revoked.
CREATE TABLE setup_links (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    -- The app's redirect URL, for a sign-in client the link creates.
    redirect_url TEXT,
    -- The app's settings for that client (JSON: email domains, strategy,
    -- scopes, scim_required, ...), applied when the link creates it.
    client_settings TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX setup_links_customer ON setup_links (customer_id);
