-- Leases: the claims an instance commits before acting outside the store (delivering to GitLab,
-- sending through the relay) are held under a lease that the instance renews while it lives.
-- A claim whose lease has expired belongs to a dead or stalled instance and is taken over at
-- once; an outcome is recorded only while the row is still claimed under the same lease (the
-- lease id is the fencing token). Ids are never reused (AUTOINCREMENT), so a lost lease can
-- never match a new one. See postern-store's leases.rs.
-- Same tables on PostgreSQL (migrations/postgres/0015_leases.sql).
CREATE TABLE leases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    holder      TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
ALTER TABLE inbound_messages ADD COLUMN claimed_by INTEGER;
ALTER TABLE outbox ADD COLUMN claimed_by INTEGER;
