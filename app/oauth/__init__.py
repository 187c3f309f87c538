"""OAuth 2 for the API: per-tenant API clients and the client credentials grant.

Design choices (RFC 6749, 6750, 7009, 7662, 9700):

* **Opaque access tokens, stored hashed, not JWTs.** Every API call already reads
  the database (RLS needs the tenant context in the transaction), so a primary-key
  look-up of the token costs nothing extra, while it buys what a JWT cannot give:
  revocation takes effect on the next request (revoking a client kills its live
  tokens too), a leaked token cannot be read for its claims, there is no signing key
  to rotate or leak, and no ``alg`` confusion. Introspection (RFC 7662) and
  revocation (RFC 7009) are therefore exact. Authlib's own JWT access tokens could
  not be revoked through its revocation endpoint and accepted tokens without
  ``typ`` (see FIELD-NOTES), which is one more reason.
* **Every credential names its type and its tenant in the clear:** client ids are
  ``erpc_<tenant>_<random>``, access tokens ``erpat_<tenant>_<secret>``, personal
  tokens ``erp_<tenant>_<secret>``. The tenant part only routes the look-up: the
  request sets that tenant's context and searches under row-level security, so a
  credential can never act in another tenant whatever is written into it. The type
  part is checked on use: each type is looked up only in its own table, so a
  personal token cannot be presented as a client secret or the other way round.
* **Short-lived tokens** (``ERP_OAUTH_TOKEN_MINUTES``, 10 by default), no refresh
  tokens (a client simply asks again with its credentials).
* **Client secrets are hashed with argon2** like passwords: 256 random bits would
  allow a fast hash, but the token endpoint is rate limited anyway and the secret is
  long-lived, so the slow hash costs little and protects a stolen table better.
  Access tokens, checked on every API call, use SHA-256 (256 random bits).
* **Scopes are permission names** (``crm:read``, ``members:write``...): one
  vocabulary for roles, personal tokens and clients. A client is created by an admin
  and can only be given scopes its creator holds (the role ceiling); its token's
  rights are exactly its scopes, never more than the client's current scopes.
"""
