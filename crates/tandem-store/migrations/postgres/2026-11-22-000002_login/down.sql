DROP TABLE sso_users;
DROP TABLE login_events;
DROP TABLE login_transactions;
