-- LTI 1.3: the LMS platforms classchat is a tool of, the launches in flight, which course
-- is which class, and classchat's own signing keys. No id_token, email, name or SIS id is
-- ever stored; an LMS user is known only by a keyed digest of (issuer, sub).

-- Platforms the administrator registered: one row per (issuer, client_id).
CREATE TABLE lti_platforms (
    id         TEXT PRIMARY KEY NOT NULL,
    issuer     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    auth_url   TEXT NOT NULL,              -- OIDC authentication endpoint
    jwks_url   TEXT NOT NULL,              -- the platform's public keyset
    token_url  TEXT,                       -- OAuth2 token endpoint (LTI Advantage services; unused yet)
    created_ms BIGINT NOT NULL,
    UNIQUE (issuer, client_id)
);

-- Deployments of a platform that may launch classchat.
CREATE TABLE lti_deployments (
    platform_id   TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    PRIMARY KEY (platform_id, deployment_id)
);

-- Logins waiting for their launch: single use (deleted by the launch), expiring. By the
-- SHA-256 of the state (the browser holds the state itself).
CREATE TABLE lti_states (
    state_digest    TEXT PRIMARY KEY NOT NULL,
    nonce           TEXT NOT NULL,
    platform_id     TEXT NOT NULL,
    target_link_uri TEXT NOT NULL,
    deployment_id   TEXT,                  -- lti_deployment_id of the login, when sent
    expires_ms      BIGINT NOT NULL
);
CREATE INDEX lti_states_expires ON lti_states (expires_ms);

-- Which class a course is: (platform, deployment, context id) -> class, made by an
-- instructor's Deep Linking choice. This decides the class, never a custom parameter.
CREATE TABLE lti_bindings (
    platform_id   TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    context_id    TEXT NOT NULL,
    class_id      TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (platform_id, deployment_id, context_id)
);
CREATE INDEX lti_bindings_class ON lti_bindings (class_id);

-- LMS users seen at a launch, by HMAC-SHA256 (key derived from AUTH_SECRET) of issuer
-- and sub: never the sub itself.
CREATE TABLE lti_users (
    user_digest    TEXT PRIMARY KEY NOT NULL,
    platform_id    TEXT NOT NULL,
    first_ms       BIGINT NOT NULL,
    last_ms        BIGINT NOT NULL
);

-- Instructors (context role Instructor or Administrator) of a bound class, by user digest:
-- the classes they may pick in Deep Linking, and the intent to make them members once a
-- teacher account is linked (teacher_id NULL until then).
CREATE TABLE lti_instructors (
    class_id    TEXT NOT NULL,
    user_digest TEXT NOT NULL,
    teacher_id  TEXT,
    last_ms     BIGINT NOT NULL,
    PRIMARY KEY (class_id, user_digest)
);
CREATE INDEX lti_instructors_user ON lti_instructors (user_digest);

-- classchat's own RS256 keys for Deep Linking responses. The private key (PKCS#8) is sealed
-- with ChaCha20-Poly1305 under a key derived from AUTH_SECRET; current = 1 marks the one
-- that signs (NULLs are distinct, so UNIQUE allows one), the newest other one is published
-- as the previous key.
CREATE TABLE lti_tool_keys (
    kid        TEXT PRIMARY KEY NOT NULL,
    sealed     TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    current    BIGINT UNIQUE,
    created_ms BIGINT NOT NULL
);
