DROP TABLE login_claims;
