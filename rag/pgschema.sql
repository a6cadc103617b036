-- The postgres search backend's tables (rag/postgres.py), one corpus per
-- PostgreSQL schema. {schema}, {dim}, {m} and {ef_construction} are filled in
-- by rag/postgres.py (the schema name is checked to be a plain identifier).
-- A change here that old code cannot read raises SCHEMA_VERSION there.

CREATE SCHEMA IF NOT EXISTS {schema};

-- One row: what the index was built with, checked on every open.
CREATE TABLE {schema}.meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    schema_version integer NOT NULL,
    generation bigint NOT NULL,          -- +1 at every committed refresh: readers notice a refresh by it
    package_version text NOT NULL,
    model text NOT NULL,
    dimension integer NOT NULL,
    chunking jsonb NOT NULL,
    sparse_tokenizer text NOT NULL,
    repair boolean NOT NULL,
    n_chunks integer NOT NULL,
    n_sentences integer NOT NULL,
    total_tokens bigint NOT NULL,        -- BM25 tokens of all chunks: avgdl = total_tokens / n_chunks
    impact_avgdl double precision NOT NULL, -- the avgdl postings.impact was computed with (the full build's)
    updated timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.articles (
    id text PRIMARY KEY,
    key text NOT NULL,                   -- rag.indexer.article_key: text, title and publisher
    source text NOT NULL,
    n_chunks integer NOT NULL
);

CREATE TABLE {schema}.chunks (
    row_id integer PRIMARY KEY,          -- compact key for postings; never reused within a build's life
    id text NOT NULL UNIQUE,             -- "<article_id>#<position>"
    article_id text NOT NULL REFERENCES {schema}.articles (id) ON DELETE CASCADE,
    position integer NOT NULL,
    start_char integer NOT NULL,
    end_char integer NOT NULL,
    n_tokens integer NOT NULL,
    embed_hash text NOT NULL,
    n_terms integer NOT NULL,            -- BM25 document length (tokens after stop words)
    embedding vector({dim}) NOT NULL,
    -- The same BM25 tokens with their positions, as a tsvector literal
    -- ('word':1,5 ...), cast without PostgreSQL's own parsing, stemming or
    -- stop words: ts_rank then ranks over the local backend's vocabulary.
    terms text NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (terms::tsvector) STORED
);
CREATE INDEX ON {schema}.chunks (article_id);
CREATE INDEX ON {schema}.chunks (embed_hash);

-- The BM25 inverted index: one row per (word, chunk), the word as
-- rag.sparse.tokenize makes it, so the vocabulary is the local backend's.
CREATE TABLE {schema}.postings (
    word text NOT NULL,
    row_id integer NOT NULL REFERENCES {schema}.chunks (row_id) ON DELETE CASCADE,
    tf integer NOT NULL,
    n_terms integer NOT NULL,            -- the chunk's length, copied so a query never joins chunks
    -- BM25's tf part, tf / (tf + k1 (1 - b + b dl / meta.impact_avgdl)): the
    -- order in which a word's postings are read, so a query can stop after the
    -- best few and bound what the rest could add (rag/postgres.py, _capped_sql).
    impact real NOT NULL
);
CREATE INDEX ON {schema}.postings (row_id);

-- word -> chunks holding it: BM25's document frequency and knows()' vocabulary.
CREATE TABLE {schema}.vocabulary (
    word text PRIMARY KEY,
    chunks integer NOT NULL
);

-- Sentences are read by article and offsets (sentences_within), never by
-- nearest neighbour: their vectors need no HNSW index.
CREATE TABLE {schema}.sentences (
    article_id text NOT NULL REFERENCES {schema}.articles (id) ON DELETE CASCADE,
    start_char integer NOT NULL,
    end_char integer NOT NULL,
    embed_hash text NOT NULL,
    words text[] NOT NULL,               -- distinct BM25 words, to keep sentence_df exact on refresh
    embedding vector({dim}) NOT NULL,
    PRIMARY KEY (article_id, start_char)
);
CREATE INDEX ON {schema}.sentences (embed_hash);

-- word -> sentences holding it: the IDF table of answer scoring.
CREATE TABLE {schema}.sentence_df (
    word text PRIMARY KEY,
    sentences integer NOT NULL
);

-- after the load
-- Built once the rows of a full build are in (much faster than growing them
-- row by row); a refresh in place then keeps them up to date.

-- Inner product on unit vectors is cosine; HNSW parameters from PostgresConfig.
CREATE INDEX chunks_embedding_hnsw ON {schema}.chunks
    USING hnsw (embedding vector_ip_ops) WITH (m = {m}, ef_construction = {ef_construction});
CREATE INDEX ON {schema}.chunks USING gin (tsv);
-- Serves both a word's whole list (the exact BM25) and its best postings first (the capped one).
CREATE INDEX postings_word ON {schema}.postings (word, impact DESC) INCLUDE (row_id, tf, n_terms);
