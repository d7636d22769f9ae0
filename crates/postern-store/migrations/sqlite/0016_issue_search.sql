-- Full-text search over issues (postern-store's `search` module): one FTS5 document per issue,
-- its title, description and the comments everyone who reads the issue reads (neither internal
-- nor system notes: a search must not tell someone who cannot read an internal note which
-- words it holds). PostgreSQL keeps the same document as a `tsvector` (its 0016).
--
-- The document is kept in sync by triggers, so every writer (the store's functions, a project
-- deleted with its issues) keeps it true without remembering to. A document is its first
-- 100 000 characters (PostgreSQL's `tsvector` has a size limit a long mail could pass; both
-- stores cut at the same place). The tokenizer keeps
-- diacritics, as PostgreSQL's `simple` configuration does, so both stores match the same words.
CREATE VIRTUAL TABLE issue_search USING fts5(document, tokenize = 'unicode61 remove_diacritics 0');

-- Rows are keyed by the issue's id (`rowid`); issue ids are never reused (AUTOINCREMENT).
INSERT INTO issue_search (rowid, document)
SELECT i.id, substr(i.title || char(10) || i.description || COALESCE((
           SELECT char(10) || group_concat(n.body, char(10)) FROM notes n
           WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
             AND NOT n.internal AND NOT n.system), ''), 1, 100000)
FROM issues i;

CREATE TRIGGER issue_search_issue_insert AFTER INSERT ON issues BEGIN
    INSERT INTO issue_search (rowid, document) VALUES (new.id, substr(new.title || char(10) || new.description, 1, 100000));
END;

CREATE TRIGGER issue_search_issue_update AFTER UPDATE OF title, description ON issues
WHEN new.title <> old.title OR new.description <> old.description BEGIN
    DELETE FROM issue_search WHERE rowid = new.id;
    INSERT INTO issue_search (rowid, document)
    SELECT i.id, substr(i.title || char(10) || i.description || COALESCE((
               SELECT char(10) || group_concat(n.body, char(10)) FROM notes n
               WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
                 AND NOT n.internal AND NOT n.system), ''), 1, 100000)
    FROM issues i WHERE i.id = new.id;
END;

CREATE TRIGGER issue_search_issue_delete AFTER DELETE ON issues BEGIN
    DELETE FROM issue_search WHERE rowid = old.id;
END;

CREATE TRIGGER issue_search_note_insert AFTER INSERT ON notes
WHEN new.noteable_type = 'issue' BEGIN
    DELETE FROM issue_search WHERE rowid = new.noteable_id;
    INSERT INTO issue_search (rowid, document)
    SELECT i.id, substr(i.title || char(10) || i.description || COALESCE((
               SELECT char(10) || group_concat(n.body, char(10)) FROM notes n
               WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
                 AND NOT n.internal AND NOT n.system), ''), 1, 100000)
    FROM issues i WHERE i.id = new.noteable_id;
END;

CREATE TRIGGER issue_search_note_update AFTER UPDATE ON notes
WHEN new.noteable_type = 'issue' BEGIN
    DELETE FROM issue_search WHERE rowid = new.noteable_id;
    INSERT INTO issue_search (rowid, document)
    SELECT i.id, substr(i.title || char(10) || i.description || COALESCE((
               SELECT char(10) || group_concat(n.body, char(10)) FROM notes n
               WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
                 AND NOT n.internal AND NOT n.system), ''), 1, 100000)
    FROM issues i WHERE i.id = new.noteable_id;
END;

CREATE TRIGGER issue_search_note_delete AFTER DELETE ON notes
WHEN old.noteable_type = 'issue' BEGIN
    DELETE FROM issue_search WHERE rowid = old.noteable_id;
    INSERT INTO issue_search (rowid, document)
    SELECT i.id, substr(i.title || char(10) || i.description || COALESCE((
               SELECT char(10) || group_concat(n.body, char(10)) FROM notes n
               WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
                 AND NOT n.internal AND NOT n.system), ''), 1, 100000)
    FROM issues i WHERE i.id = old.noteable_id;
END;

-- The list sorted by last change pages through this index.
CREATE INDEX issues_project_updated_idx ON issues (project_id, updated_at, iid);
