-- System tags (DataArts Fabric's _sys_enterprise_project_id): kept apart from user
-- tags, so they neither count against the tag limit nor show up as ordinary tags.
CREATE TABLE sys_tags (
    rid    BIGINT NOT NULL REFERENCES resources(rid) ON DELETE CASCADE,
    key    TEXT COLLATE "C" NOT NULL,
    value  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (rid, key)
);
