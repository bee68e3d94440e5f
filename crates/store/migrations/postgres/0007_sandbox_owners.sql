-- v7: every sandbox object has an owner, checked on every read, list, update and delete:
-- 'app' (the 2-legged token's app, client_id), 'member' (the member, member_id, through the app
-- that made it, client_id: person URNs are pairwise per app) or the URN of the organization or
-- ad account it was made for (members with a role there). Objects from before v7 get the owner
-- their columns imply; new ids are random (the server draws them), never a shared sequence.
ALTER TABLE sandbox_objects ADD COLUMN owner TEXT;
UPDATE sandbox_objects SET owner = CASE
    WHEN member_id IS NULL THEN 'app'
    WHEN target LIKE 'urn:li:organization:%' OR target LIKE 'urn:li:sponsoredAccount:%' THEN target
    ELSE 'member' END;
CREATE INDEX sandbox_objects_owner ON sandbox_objects (collection, owner);
