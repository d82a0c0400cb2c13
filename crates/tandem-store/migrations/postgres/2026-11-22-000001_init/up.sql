CREATE TABLE tandem_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE integration_keys (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE oidc_clients (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL UNIQUE,
    idp_type TEXT NOT NULL,
    sso_domain TEXT,
    tenant_id TEXT,
    issuer_override TEXT,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_enc TEXT,
    uses_pkce BOOLEAN NOT NULL,
    redirect_url TEXT NOT NULL,
    matching_strategy TEXT,
    email_domain_allowlist TEXT NOT NULL,
    additional_scopes TEXT NOT NULL,
    discovery TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE oidc_client_domains (
    domain TEXT NOT NULL,
    oidc_client_id TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    PRIMARY KEY (domain, oidc_client_id)
);
CREATE INDEX oidc_client_domains_client ON oidc_client_domains (oidc_client_id);

CREATE TABLE scim_connections (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL UNIQUE,
    api_key_ttl_days BIGINT,
    -- "reject" (400 naming the ids) or "ignore" (dropped, noted in the provisioning log)
    unknown_group_members TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE scim_api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    scim_connection_id TEXT NOT NULL REFERENCES scim_connections (id) ON DELETE CASCADE,
    display_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    retired_at BIGINT
);
CREATE INDEX scim_api_keys_connection ON scim_api_keys (scim_connection_id);

CREATE TABLE scim_users (
    id TEXT PRIMARY KEY NOT NULL,
    scim_connection_id TEXT NOT NULL REFERENCES scim_connections (id) ON DELETE CASCADE,
    user_name TEXT NOT NULL,
    user_name_lower TEXT NOT NULL,
    user_name_local_lower TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT,
    active BOOLEAN NOT NULL,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
-- userName is unique per connection, case-insensitively, among live users;
-- tombstones keep their userName so a login can still see them.
CREATE UNIQUE INDEX scim_users_user_name_live ON scim_users (scim_connection_id, user_name_lower) WHERE deleted_at IS NULL;
CREATE INDEX scim_users_conn_id ON scim_users (scim_connection_id, id);
-- Each lookup index ends with id so an equality lookup also yields the page order.
CREATE INDEX scim_users_user_name_lower ON scim_users (scim_connection_id, user_name_lower, id);
CREATE INDEX scim_users_local ON scim_users (scim_connection_id, user_name_local_lower, id);
CREATE INDEX scim_users_external_id ON scim_users (scim_connection_id, external_id, id);

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY NOT NULL,
    scim_connection_id TEXT NOT NULL REFERENCES scim_connections (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    display_name_lower TEXT NOT NULL,
    external_id TEXT,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (scim_connection_id, display_name_lower);
CREATE INDEX scim_groups_conn_id ON scim_groups (scim_connection_id, id);
CREATE INDEX scim_groups_external_id ON scim_groups (scim_connection_id, external_id, id);

CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    display TEXT,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX scim_group_members_member ON scim_group_members (member_id);

CREATE TABLE provisioning_logs (
    id TEXT PRIMARY KEY NOT NULL,
    scim_connection_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    request_id TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    operation TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    user_name TEXT,
    status INTEGER NOT NULL,
    detail TEXT,
    reasons TEXT NOT NULL
);
CREATE INDEX provisioning_logs_conn_time ON provisioning_logs (scim_connection_id, id);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_target ON audit_events (target_type, target_id);
