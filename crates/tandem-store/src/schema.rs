// One schema for both backends. Timestamps are BIGINT microseconds since the
// Unix epoch (UTC), so SQLite and PostgreSQL compare them identically; ids and
// JSON documents are TEXT. `schema_check` proves both migration folders end
// with exactly these tables and columns.

diesel::table! {
    tandem_meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    integration_keys (id) {
        id -> Text,
        name -> Text,
        display_prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oidc_clients (id) {
        id -> Text,
        customer_id -> Text,
        idp_type -> Text,
        sso_domain -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        issuer_override -> Nullable<Text>,
        issuer -> Text,
        client_id -> Text,
        client_secret_enc -> Nullable<Text>,
        uses_pkce -> Bool,
        redirect_url -> Text,
        matching_strategy -> Nullable<Text>,
        email_domain_allowlist -> Text,
        additional_scopes -> Text,
        discovery -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        accept_unverified_email -> Nullable<Bool>,
        scopes -> Nullable<Text>,
        scim_required -> Bool,
        client_secret_expires_at -> Nullable<BigInt>,
        client_authentication -> Text,
        client_keys_enc -> Nullable<Text>,
        client_assertion_audience -> Text,
        previous_client_key_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oidc_client_domains (domain, oidc_client_id) {
        domain -> Text,
        oidc_client_id -> Text,
    }
}

diesel::table! {
    scim_connections (id) {
        id -> Text,
        customer_id -> Text,
        api_key_ttl_days -> Nullable<BigInt>,
        unknown_group_members -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    scim_api_keys (id) {
        id -> Text,
        scim_connection_id -> Text,
        display_prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    scim_users (id) {
        id -> Text,
        scim_connection_id -> Text,
        user_name -> Text,
        user_name_lower -> Text,
        user_name_local_lower -> Text,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        active -> Bool,
        resource -> Text,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    scim_groups (id) {
        id -> Text,
        scim_connection_id -> Text,
        display_name -> Text,
        display_name_lower -> Text,
        external_id -> Nullable<Text>,
        resource -> Text,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    scim_group_members (group_id, member_id) {
        group_id -> Text,
        member_id -> Text,
        member_type -> Text,
        display -> Nullable<Text>,
    }
}

diesel::table! {
    provisioning_logs (id) {
        id -> Text,
        scim_connection_id -> Text,
        created_at -> BigInt,
        request_id -> Nullable<Text>,
        method -> Text,
        path -> Text,
        operation -> Text,
        resource_type -> Nullable<Text>,
        resource_id -> Nullable<Text>,
        user_name -> Nullable<Text>,
        status -> Integer,
        detail -> Nullable<Text>,
        reasons -> Text,
    }
}

diesel::table! {
    directory_events (seq) {
        seq -> BigInt,
        txid -> BigInt,
        created_at -> BigInt,
        scim_connection_id -> Text,
        customer_id -> Text,
        event_type -> Text,
        resource_id -> Text,
        data -> Text,
    }
}

diesel::table! {
    directory_event_purges (id) {
        id -> BigInt,
        txid -> BigInt,
        seq -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        secret_enc -> Text,
        previous_secret_enc -> Nullable<Text>,
        previous_secret_until -> Nullable<BigInt>,
        customer_id -> Nullable<Text>,
        event_types -> Nullable<Text>,
        cursor_txid -> BigInt,
        cursor_seq -> BigInt,
        created_at -> BigInt,
        next_attempt_at -> BigInt,
        leased_until -> Nullable<BigInt>,
        lease_id -> Nullable<Text>,
        failures -> BigInt,
        last_attempt_at -> Nullable<BigInt>,
        last_success_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        failing_since -> Nullable<BigInt>,
        skipped_at -> Nullable<BigInt>,
        skipped -> Nullable<Text>,
    }
}

diesel::table! {
    setup_links (id) {
        id -> Text,
        customer_id -> Text,
        token_hash -> Text,
        display_prefix -> Text,
        redirect_url -> Nullable<Text>,
        client_settings -> Nullable<Text>,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        created_at -> BigInt,
        actor -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        details -> Text,
    }
}

// No longer used (logins travel in their sealed state); kept for nodes of
// the previous release during a rolling upgrade, dropped in a later one.
diesel::table! {
    login_transactions (id) {
        id -> Text,
        oidc_client_id -> Text,
        state_hash -> Text,
        cookie_hash -> Text,
        nonce -> Text,
        pkce_verifier_enc -> Nullable<Text>,
        post_login_redirect_url -> Nullable<Text>,
        login_event_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_claims (expires_at, login_id) {
        expires_at -> BigInt,
        login_id -> Text,
    }
}

diesel::table! {
    login_events (id) {
        id -> Text,
        oidc_client_id -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        outcome -> Text,
        error_type -> Nullable<Text>,
        error_kind -> Nullable<Text>,
        failed_step -> Nullable<Text>,
        diagnosis -> Nullable<Text>,
        steps -> Text,
        oidc_user_id -> Nullable<Text>,
        email -> Nullable<Text>,
        scim_user_id -> Nullable<Text>,
    }
}

diesel::table! {
    sso_users (id) {
        id -> Text,
        oidc_client_id -> Text,
        oidc_user_id -> Text,
        email -> Nullable<Text>,
        email_verified -> Nullable<Bool>,
        preferred_username -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        claims -> Text,
        first_login_at -> BigInt,
        last_login_at -> BigInt,
        login_count -> BigInt,
    }
}

diesel::table! {
    dashboard_sessions (id) {
        id -> Text,
        integration_key_id -> Text,
        csrf_token -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(scim_api_keys -> scim_connections (scim_connection_id));
diesel::joinable!(scim_users -> scim_connections (scim_connection_id));
diesel::joinable!(scim_groups -> scim_connections (scim_connection_id));
diesel::joinable!(scim_group_members -> scim_groups (group_id));
diesel::joinable!(oidc_client_domains -> oidc_clients (oidc_client_id));

diesel::allow_tables_to_appear_in_same_query!(
    tandem_meta,
    integration_keys,
    oidc_clients,
    oidc_client_domains,
    scim_connections,
    scim_api_keys,
    scim_users,
    scim_groups,
    scim_group_members,
    provisioning_logs,
    directory_events,
    directory_event_purges,
    webhook_endpoints,
    setup_links,
    audit_events,
    login_transactions,
    login_claims,
    login_events,
    sso_users,
    dashboard_sessions,
);
