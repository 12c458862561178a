"""Sign-in and access (SPEC §12): the service the board, the API and the CLI call.

`duban.access.service.Access` is the one entry point; each module below holds one concept:
`passwords` (the rule and argon2id hashes), `credentials` (the secrets' rows), `lockout`
(5 failures in 15 min lock for 15 min), `sessions` (server-side board sessions and their
CSRF token), `tokens` (API tokens), `totp` (the optional second factor), `settings` (the
`security` section of the settings file) and `events` (security events in the audit chain).

No secret — a password, a token, a hash, a TOTP secret, a session id — is ever put in an
audit event, a log line or an error message; the tests grep for them.
"""
