-- Nonces handed out to a signer and not yet written down in a saga's log. Several instances signing
-- with one key share `nonces` (the highest handed out, plus one) and these claims: a claim is
-- deleted in the commit that logs its transaction; one whose holder stopped first expires at
-- `until_ms`, and its nonce is handed out again (or plugged, so it holds nothing behind it). A
-- nonce given back (the node refused its transaction) is a claim that has already expired.
CREATE TABLE nonce_claims (
    chain       BIGINT NOT NULL,
    signer      TEXT NOT NULL,
    nonce       BIGINT NOT NULL,
    owner       TEXT NOT NULL,
    until_ms    BIGINT NOT NULL,
    PRIMARY KEY (chain, signer, nonce)
);
