"""The centre's read-only FHIR R4 gateway (`/fhir/`), for registered clinical systems.

- `clients`: the registered systems (`fhir_clients`), their keys, scopes and person filter,
  and the assertion ids already used (`fhir_assertion_ids`).
- `tokens`: OAuth2 client credentials with a signed JWT assertion (RFC 7523, as NHS England's
  API platform does it for application-restricted access) and the short-lived access tokens.
- `resources`: Patient, Observation, Flag, Communication, DetectedIssue from the centre's
  tables and the record it writes; searchset Bundles with paging.
- `frailty_import`: an eFI Observation from the GP record sets the person's frailty category.
- `router`: the HTTP routes, their OperationOutcome errors and the audit of every read.

`docs/interoperability.md` walks through it as a clinical system sees it.
"""
