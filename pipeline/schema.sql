-- The QA store. One file per deployment (default qa.duckdb). Times are seconds from the start of
-- the recording unless the column says otherwise. Later stages add tables; none renames a column.

CREATE TABLE IF NOT EXISTS schema_info (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- Every file a batch has seen, by path; the sha256 is what identifies the recording's content.
CREATE TABLE IF NOT EXISTS recordings (
    path          VARCHAR PRIMARY KEY,
    sha256        VARCHAR NOT NULL,
    size_bytes    BIGINT NOT NULL,
    status        VARCHAR NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    error         VARCHAR,             -- why it failed or was skipped, for a supervisor to read
    call_id       VARCHAR NOT NULL,    -- sidecar call_id, else the file name without extension
    attempts      INTEGER NOT NULL DEFAULT 1,
    elapsed_s     DOUBLE,
    processed_at  TIMESTAMPTZ NOT NULL
);

-- One row per successfully processed call.
CREATE TABLE IF NOT EXISTS calls (
    call_id             VARCHAR PRIMARY KEY,
    path                VARCHAR NOT NULL UNIQUE,
    sha256              VARCHAR NOT NULL UNIQUE,
    agent_id            VARCHAR,
    agent_name          VARCHAR,
    started_at          TIMESTAMPTZ,
    direction           VARCHAR,
    channels            VARCHAR NOT NULL,   -- stereo-agent-left | stereo-agent-right | mono (as analysed)
    channels_source     VARCHAR NOT NULL,   -- sidecar | config | file
    ring_seconds        DOUBLE,
    hangup_by           VARCHAR,
    customer_phone      VARCHAR,
    call_type           VARCHAR,
    meta_source         VARCHAR NOT NULL,   -- sidecar | filename | none
    duration_s          DOUBLE NOT NULL,
    source_format       VARCHAR NOT NULL,
    source_sample_rate  INTEGER NOT NULL,
    source_channels     INTEGER NOT NULL,
    diarization_method  VARCHAR NOT NULL,
    asr_model           VARCHAR NOT NULL,
    role_source         VARCHAR NOT NULL,
    role_confidence     DOUBLE NOT NULL,
    warnings            VARCHAR[] NOT NULL
);

CREATE TABLE IF NOT EXISTS utterances (
    call_id          VARCHAR NOT NULL,
    idx              INTEGER NOT NULL,   -- order by start time within the call
    speaker          VARCHAR NOT NULL CHECK (speaker IN ('agent', 'customer')),
    start_s          DOUBLE NOT NULL,
    end_s            DOUBLE NOT NULL,
    text             VARCHAR NOT NULL,
    confidence       DOUBLE NOT NULL,    -- mean word probability from the recogniser
    role_source      VARCHAR NOT NULL,
    role_confidence  DOUBLE NOT NULL,
    PRIMARY KEY (call_id, idx),
    CHECK (end_s >= start_s)
);

CREATE TABLE IF NOT EXISTS char_timings (
    call_id        VARCHAR NOT NULL,
    utterance_idx  INTEGER NOT NULL,
    idx            INTEGER NOT NULL,
    char           VARCHAR NOT NULL,
    start_s        DOUBLE NOT NULL,
    end_s          DOUBLE NOT NULL,
    probability    DOUBLE NOT NULL,
    PRIMARY KEY (call_id, utterance_idx, idx)
);

-- Voiced stretches per party (finer than utterances): speaking time, overlaps and silences.
CREATE TABLE IF NOT EXISTS voice_activity (
    call_id  VARCHAR NOT NULL,
    speaker  VARCHAR NOT NULL CHECK (speaker IN ('agent', 'customer')),
    start_s  DOUBLE NOT NULL,
    end_s    DOUBLE NOT NULL,
    PRIMARY KEY (call_id, speaker, start_s)
);
