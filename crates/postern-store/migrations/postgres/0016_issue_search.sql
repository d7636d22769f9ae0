-- Full-text search over issues (postern-store's `search` module): one `tsvector` per issue, of
-- its title, description and the comments everyone who reads the issue reads (neither internal
-- nor system notes: a search must not tell someone who cannot read an internal note which
-- words it holds). SQLite keeps the same document in FTS5 (its 0016).
--
-- Kept in sync by triggers, so every writer keeps it true. A document is its first 100 000
-- characters, as on SQLite: a `tsvector` has a size limit (1 MB) a long mail could pass, and
-- an insert must never fail for its index. The `simple` configuration neither
-- stems nor drops stop words, as SQLite's unicode61 tokenizer; punctuation becomes a space
-- first, so that `alice@example.com` or `foo_bar` are words apart as in SQLite rather than
-- one e-mail or URL token of PostgreSQL's parser.
CREATE TABLE issue_search (
    issue_id BIGINT PRIMARY KEY REFERENCES issues (id) ON DELETE CASCADE,
    document tsvector NOT NULL
);
CREATE INDEX issue_search_document_idx ON issue_search USING GIN (document);

CREATE FUNCTION issue_search_refresh(target BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO issue_search (issue_id, document)
    SELECT i.id, to_tsvector('simple', regexp_replace(left(
               i.title || E'\n' || i.description || COALESCE((
                   SELECT E'\n' || string_agg(n.body, E'\n') FROM notes n
                   WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
                     AND NOT n.internal AND NOT n.system), ''), 100000),
               '[[:punct:][:space:][:cntrl:]]+', ' ', 'g'))
    FROM issues i WHERE i.id = target
    ON CONFLICT (issue_id) DO UPDATE SET document = EXCLUDED.document;
$$;

CREATE FUNCTION issue_search_on_issue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM issue_search_refresh(NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER issue_search_issue_insert AFTER INSERT ON issues
    FOR EACH ROW EXECUTE FUNCTION issue_search_on_issue();

-- `update_issue` names every column in its SET list: only a changed text rebuilds the document.
CREATE TRIGGER issue_search_issue_update AFTER UPDATE OF title, description ON issues
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title
                       OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION issue_search_on_issue();

CREATE FUNCTION issue_search_on_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.noteable_type = 'issue' THEN
        PERFORM issue_search_refresh(OLD.noteable_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.noteable_type = 'issue' THEN
        PERFORM issue_search_refresh(NEW.noteable_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER issue_search_note AFTER INSERT OR UPDATE OR DELETE ON notes
    FOR EACH ROW EXECUTE FUNCTION issue_search_on_note();

SELECT issue_search_refresh(id) FROM issues;

-- The list sorted by last change pages through this index.
CREATE INDEX issues_project_updated_idx ON issues (project_id, updated_at, iid);
