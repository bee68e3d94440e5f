//! Consent and grants: nothing that narrows or revokes a grant happens on a GET; tokens' scopes are read one way everywhere.
