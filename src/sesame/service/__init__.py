"""The score service for downstream systems (`sesame serve`).

Serves the night that published/NIGHT names (scores, exclusions, reason codes, visa rules, rule checks and lists,
all of one night) from memory, behind API keys
with scopes, with an append-only audit log, and issues signed personal credit reports with the user's consent.

    store.py      snapshots loaded, verified and indexed in memory; hot swap when NIGHT moves
    access.py     API keys (stored hashed) and their scopes
    audit.py      who looked up whom, when, with what outcome
    consent.py    the consent register for personal credit reports
    reports.py    the personal credit report (HTML, PDF), Ed25519 signature, offline verification
    reference.py  visa rules and reason codes as the night publishes them; the wording of failed conditions
    app.py        the FastAPI application

State lives under $SESAME_HOME/service/ (private: API keys, consents, audit, the report-signing keyring); what
verifiers need offline is published beside the snapshots: the key set (published/report-keys.json, and the current
key as published/report-signing-key.pem) and the revocation list (published/report-revocations.json).
"""
