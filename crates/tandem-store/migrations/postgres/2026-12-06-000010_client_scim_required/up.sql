-- Per client: whether a login needs a SCIM user, so that a customer whose
-- SCIM connection is deleted or renamed away is refused instead of signing
-- in without the deprovisioning check. Set when the client is paired with
-- a connection; cleared only by an explicit change. Clients paired now
-- start with it set.
ALTER TABLE oidc_clients ADD COLUMN scim_required BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE oidc_clients SET scim_required = TRUE
  WHERE customer_id IN (SELECT customer_id FROM scim_connections);
