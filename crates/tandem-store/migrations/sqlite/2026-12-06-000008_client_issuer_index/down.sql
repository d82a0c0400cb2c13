DROP INDEX oidc_clients_issuer;
