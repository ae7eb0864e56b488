-- Level-1 assistant: a per-account knowledge base of question/answer entries per language.
-- Business content, not personal data (invariant 5 does not apply), so it is kept in clear and
-- indexed for full-text search. Accents are folded before stemming so "envío" and "envio", which
-- customers type interchangeably, meet.

-- unaccent ships with both the embedded server and the usual packages, and it is a trusted extension
-- (a database owner may create it); without it we fold the common Latin accents with translate(),
-- so the migration never depends on a superuser.
DO $$
DECLARE
    schema_name text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS unaccent;
    EXCEPTION WHEN others THEN
        RAISE NOTICE 'unaccent unavailable (%), folding accents with translate()', SQLERRM;
    END;
    SELECT n.nspname INTO schema_name FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'unaccent';
    IF schema_name IS NOT NULL THEN
        -- unaccent() is only STABLE (its dictionary could change); the two-argument form with a fixed
        -- dictionary is safe to declare IMMUTABLE, which a generated column requires.
        EXECUTE format($f$CREATE FUNCTION kb_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
                          RETURN lower(%1$I.unaccent(%2$L::regdictionary, coalesce(t, '')))$f$,
                       schema_name, schema_name || '.unaccent');
    ELSE
        CREATE FUNCTION kb_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN translate(lower(coalesce(t, '')), 'áàâäãåéèêëíìîïóòôöõúùûüñçýÿ', 'aaaaaaeeeeiiiiooooouuuuncyy');
    END IF;
END
$$;

-- The text search configuration for an entry's language (its base: "es_MX" → spanish).
CREATE FUNCTION kb_ts_config(language text) RETURNS regconfig LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE lower(split_part(split_part(coalesce(language, ''), '_', 1), '-', 1))
    WHEN 'en' THEN 'pg_catalog.english'::regconfig
    WHEN 'es' THEN 'pg_catalog.spanish'::regconfig
    WHEN 'pt' THEN 'pg_catalog.portuguese'::regconfig
    WHEN 'fr' THEN 'pg_catalog.french'::regconfig
    WHEN 'de' THEN 'pg_catalog.german'::regconfig
    WHEN 'it' THEN 'pg_catalog.italian'::regconfig
    ELSE 'pg_catalog.simple'::regconfig
END;

-- The lexemes of ``t`` in ``config``, accents folded after stemming: Snowball's Spanish and Portuguese
-- stemmers need the accents to strip suffixes ("devolvéis", "información"), while customers often type
-- without them. So the text is stemmed both as written and folded, and the union of both is kept;
-- questions go through the same function, so whichever way either side was typed they meet.
CREATE FUNCTION kb_lexemes(config regconfig, t text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_tsvector('pg_catalog.simple', kb_fold(array_to_string(
    tsvector_to_array(to_tsvector(config, coalesce(t, ''))) || tsvector_to_array(to_tsvector(config, kb_fold(t))),
    ' ')));

-- array_to_string() is only STABLE; the generated column needs an IMMUTABLE whole.
CREATE FUNCTION kb_document(language text, question text, phrasings text[], tags text[], answer text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN setweight(kb_lexemes(kb_ts_config(language), question), 'A')
    || setweight(kb_lexemes(kb_ts_config(language), array_to_string(phrasings, ' ')), 'A')
    || setweight(kb_lexemes(kb_ts_config(language), array_to_string(tags, ' ')), 'B')
    || setweight(kb_lexemes(kb_ts_config(language), answer), 'C');

CREATE TABLE kb_entries (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    language    text NOT NULL,
    question    text NOT NULL,
    answer      text NOT NULL,
    tags        text[] NOT NULL DEFAULT '{}',
    phrasings   text[] NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    search      tsvector GENERATED ALWAYS AS (kb_document(language, question, phrasings, tags, answer)) STORED,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX kb_entries_search ON kb_entries USING gin (search);
CREATE INDEX kb_entries_by_time ON kb_entries (account_id, created_at, id);

-- Per-account assistant settings, in a table of their own rather than columns on accounts so this
-- migration stays independent of the automation engine's. ``revision`` moves on every change to the
-- entries or the threshold: each process keeps its retrieval index in memory and rebuilds it when the
-- revision it sees differs.
CREATE TABLE kb_settings (
    account_id  uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    threshold   double precision,
    revision    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
