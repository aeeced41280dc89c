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

-- ---- audio events and metrics (the metrics stage) -------------------------------------------

-- Non-speech sounds found while the audio was at hand: ringback bursts, hold music. Metrics and
-- re-scoring read these instead of the audio.
CREATE TABLE IF NOT EXISTS audio_events (
    call_id  VARCHAR NOT NULL,
    idx      INTEGER NOT NULL,
    kind     VARCHAR NOT NULL CHECK (kind IN ('ring', 'music')),
    start_s  DOUBLE NOT NULL,
    end_s    DOUBLE NOT NULL,
    channel  VARCHAR NOT NULL,
    detail   VARCHAR NOT NULL,
    PRIMARY KEY (call_id, idx)
);

CREATE TABLE IF NOT EXISTS call_metrics (
    call_id                   VARCHAR PRIMARY KEY,
    duration_s                DOUBLE NOT NULL,
    agent_chars_per_min       DOUBLE,
    customer_chars_per_min    DOUBLE,
    agent_speaking_s          DOUBLE NOT NULL,
    agent_rate_outside_share  DOUBLE,
    rings                     INTEGER,
    rings_source              VARCHAR,
    answered_at               DOUBLE,
    answer_delay_s            DOUBLE,
    answer_delay_source       VARCHAR,
    agent_talk_s              DOUBLE NOT NULL,
    customer_talk_s           DOUBLE NOT NULL,
    overlap_s                 DOUBLE NOT NULL,
    silence_ratio             DOUBLE NOT NULL,
    longest_silence_s         DOUBLE NOT NULL,
    hangup_by                 VARCHAR,
    hangup_source             VARCHAR,
    call_type                 VARCHAR,
    nuisance_over_max         BOOLEAN,
    computed_at               TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS utterance_rates (
    call_id          VARCHAR NOT NULL,
    utterance_idx    INTEGER NOT NULL,
    speaker          VARCHAR NOT NULL,
    chars            INTEGER NOT NULL,
    speaking_s       DOUBLE NOT NULL,
    chars_per_min    DOUBLE NOT NULL,
    PRIMARY KEY (call_id, utterance_idx)
);

CREATE TABLE IF NOT EXISTS interruptions (
    call_id           VARCHAR NOT NULL,
    idx               INTEGER NOT NULL,
    start_s           DOUBLE NOT NULL,
    end_s             DOUBLE NOT NULL,
    by_speaker        VARCHAR NOT NULL CHECK (by_speaker IN ('agent', 'customer')),
    text              VARCHAR NOT NULL,
    interrupted_text  VARCHAR NOT NULL,
    overlap_s         DOUBLE NOT NULL,
    PRIMARY KEY (call_id, idx)
);

CREATE TABLE IF NOT EXISTS holds (
    call_id            VARCHAR NOT NULL,
    idx                INTEGER NOT NULL,
    start_s            DOUBLE NOT NULL,
    end_s              DOUBLE NOT NULL,
    asked              BOOLEAN NOT NULL,
    ask_text           VARCHAR,
    checkins           INTEGER NOT NULL,
    checkin_times      DOUBLE[] NOT NULL,
    max_checkin_gap_s  DOUBLE,
    thanked            BOOLEAN NOT NULL,
    thank_text         VARCHAR,
    music              BOOLEAN NOT NULL,
    ends_call          BOOLEAN NOT NULL,
    lookup             BOOLEAN NOT NULL,
    PRIMARY KEY (call_id, idx)
);

CREATE TABLE IF NOT EXISTS dead_air (
    call_id  VARCHAR NOT NULL,
    idx      INTEGER NOT NULL,
    start_s  DOUBLE NOT NULL,
    end_s    DOUBLE NOT NULL,
    PRIMARY KEY (call_id, idx)
);

-- ---- scorecard (the scorecard stage) --------------------------------------------------------

-- Every scorecard content ever used, by content hash, so an old score can be explained.
CREATE TABLE IF NOT EXISTS scorecards (
    scorecard_hash  VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    source_path     VARCHAR,
    content         VARCHAR NOT NULL,
    first_used_at   TIMESTAMPTZ NOT NULL
);

-- One row per scoring of a call; re-scoring adds a row and marks it current, history stays.
CREATE TABLE IF NOT EXISTS scores (
    call_id         VARCHAR NOT NULL,
    scored_at       TIMESTAMPTZ NOT NULL,
    scorecard_hash  VARCHAR NOT NULL,
    score           DOUBLE NOT NULL CHECK (score >= 0 AND score <= 100),
    fatal           BOOLEAN NOT NULL,
    is_current      BOOLEAN NOT NULL,
    PRIMARY KEY (call_id, scored_at)
);

CREATE TABLE IF NOT EXISTS findings (
    call_id         VARCHAR NOT NULL,
    scored_at       TIMESTAMPTZ NOT NULL,
    idx             INTEGER NOT NULL,
    rule_id         VARCHAR NOT NULL,
    title           VARCHAR NOT NULL,
    category        VARCHAR NOT NULL,
    passed          BOOLEAN NOT NULL,
    deduction       DOUBLE NOT NULL,
    fatal           BOOLEAN NOT NULL,
    start_s         DOUBLE,
    end_s           DOUBLE,
    speaker         VARCHAR,
    evidence        VARCHAR,
    confidence      DOUBLE,
    needs_review    BOOLEAN NOT NULL,
    replacement     VARCHAR,
    scorecard_hash  VARCHAR NOT NULL,
    PRIMARY KEY (call_id, scored_at, idx)
);

-- The rules engine's version (pipeline/rules/incremental.py: a hash of its code) that made the
-- score's findings. `callqa rescore` keeps the stored findings of rules a scorecard edit did not
-- change only when they were made by the running version; NULL (scores stored before): never.
ALTER TABLE scores ADD COLUMN IF NOT EXISTS engine VARCHAR;

-- ---- customer evaluations and complaints (monthly reports) ------------------------------------

-- Events from the phone/CRM system that the monthly reward/penalty policy counts (callqa
-- import-events). `event_id` is the CRM's id when the export has one, else derived from the row's
-- content and its occurrence in the file, so importing the same export again changes nothing.
CREATE TABLE IF NOT EXISTS agent_events (
    event_id       VARCHAR PRIMARY KEY,
    event_date     DATE NOT NULL,
    agent_id       VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL CHECK (kind IN ('praise', 'complaint', 'lost_order', 'bad_review')),
    substantiated  BOOLEAN,            -- NULL: not yet decided; penalties need TRUE
    call_id        VARCHAR,
    note           VARCHAR NOT NULL,
    source_file    VARCHAR NOT NULL,
    source_line    INTEGER NOT NULL,
    imported_at    TIMESTAMPTZ NOT NULL
);

-- ---- robustness, privacy and retention (docs/operations.md) ---------------------------------

-- Why a recording failed or was skipped, as a code for grouping and retry decisions (the reason
-- for people is `error`): unreadable, empty, writing, not_audio, unsupported, truncated,
-- too_short, too_long, silent, no_speech, sidecar, unknown_agent, duplicate, call_id_taken,
-- crashed, db_busy, io, input, internal. NULL for processed recordings.
ALTER TABLE recordings ADD COLUMN IF NOT EXISTS problem VARCHAR;

-- A recording the batch has started on and not finished. A row left here when the next batch
-- starts means the batch died on it (killed, out of memory, a crash in a decoder): that recording
-- is counted, retried last, and no longer retried automatically after batch.max_crashes.
CREATE TABLE IF NOT EXISTS processing (
    path        VARCHAR PRIMARY KEY,
    sha256      VARCHAR NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    pid         INTEGER NOT NULL,
    crashes     INTEGER NOT NULL        -- batches that died on this content so far
);

-- Recordings removed by `callqa purge` (retention): their audio may still sit in the recordings
-- folder, and must not come back as new calls. No personal data: the content hash and the name
-- and call id with any caller's number masked (pipeline/privacy_names.py).
CREATE TABLE IF NOT EXISTS purged_recordings (
    sha256      VARCHAR PRIMARY KEY,
    path        VARCHAR NOT NULL,
    call_id     VARCHAR NOT NULL,
    month       VARCHAR,                -- YYYY-MM the call belonged to
    purged_at   TIMESTAMPTZ NOT NULL
);

-- Every time personal data leaves the store or is removed from it: exports, reports, transcripts
-- shown, purges (standards, section 8: extraction is controlled and logged). Never purged.
CREATE TABLE IF NOT EXISTS audit_log (
    logged_at TIMESTAMPTZ NOT NULL,
    action    VARCHAR NOT NULL,         -- export | report | show | purge
    command   VARCHAR NOT NULL,         -- the command line, or the Prefect flow and its run
    os_user   VARCHAR NOT NULL,
    host      VARCHAR NOT NULL,
    target    VARCHAR,                  -- the file or folder written, standard output, a call id
    records   INTEGER,                  -- calls exported or shown, call pages written, calls removed
    redacted  BOOLEAN,                  -- whether personal data was masked in what left the store
    details   VARCHAR                   -- JSON: the month, --before, counts …
);

-- What the recogniser says about each utterance (pipeline/asr/guards.py): whisper's figures for the
-- weakest decoding window its words came from, and whether our detector found a decoding loop in
-- its text. The scorecard sends findings read from weak text to review. No row: not known (typed
-- transcripts, calls processed before this table existed).
CREATE TABLE IF NOT EXISTS utterance_evidence (
    call_id            VARCHAR NOT NULL,
    utterance_idx      INTEGER NOT NULL,
    avg_logprob        DOUBLE,            -- lowest mean token log-probability
    no_speech_prob     DOUBLE,            -- highest no-speech probability
    compression_ratio  DOUBLE,            -- highest gzip compression ratio of the window's text
    looping            BOOLEAN NOT NULL,  -- a unit repeated back to back (仅仅仅仅仅)
    unheard_s          DOUBLE,            -- seconds of the turn no recognised word covers
    PRIMARY KEY (call_id, utterance_idx)
);

-- ---- the review portal (pipeline/portal, `callqa serve`) -----------------------------------------

-- People who log in. Passwords as argon2id hashes only. `session_epoch` grows at logout, disable and
-- reset: every session cookie issued before is void.
CREATE TABLE IF NOT EXISTS portal_users (
    name           VARCHAR PRIMARY KEY,
    role           VARCHAR NOT NULL CHECK (role IN ('agent', 'supervisor', 'manager')),
    agent_id       VARCHAR,            -- the agent's 工号 (role agent): the calls they may see
    password_hash  VARCHAR NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT false,
    session_epoch  INTEGER NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    CHECK (role <> 'agent' OR agent_id IS NOT NULL)
);

-- Failed logins per name (known or not, so that the answer never tells which names exist).
CREATE TABLE IF NOT EXISTS portal_login_failures (
    name          VARCHAR PRIMARY KEY,
    failures      INTEGER NOT NULL,
    last_at       TIMESTAMPTZ NOT NULL,
    locked_until  TIMESTAMPTZ
);

-- The key that signs session cookies, made at the first start and kept out of the repository.
CREATE TABLE IF NOT EXISTS portal_secret (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  VARCHAR NOT NULL
);

-- An agent's dispute (申诉) of a deducting finding. The finding is named by rule and evidence time,
-- which survive re-scoring (finding indexes do not).
CREATE SEQUENCE IF NOT EXISTS appeal_ids START 1;
CREATE TABLE IF NOT EXISTS appeals (
    appeal_id     INTEGER PRIMARY KEY DEFAULT nextval('appeal_ids'),
    call_id       VARCHAR NOT NULL,
    rule_id       VARCHAR NOT NULL,
    start_s       DOUBLE,
    title         VARCHAR NOT NULL,
    deduction     DOUBLE NOT NULL,
    agent_id      VARCHAR NOT NULL,
    filed_by      VARCHAR NOT NULL,
    filed_at      TIMESTAMPTZ NOT NULL,
    reason        VARCHAR NOT NULL,
    state         VARCHAR NOT NULL CHECK (state IN ('open', 'upheld', 'overturned')),
    decided_by    VARCHAR,
    decided_at    TIMESTAMPTZ,
    comment       VARCHAR,
    score_before  DOUBLE,
    score_after   DOUBLE
);

-- People's verdicts on findings: a review of a needs_review finding (confirm: it deducts; reject: it
-- does not) or a decided appeal (overturned: it does not deduct). Every scoring of the call applies
-- the latest verdict per (call, rule, time) — also `callqa rescore` — and `callqa calibrate` reads
-- them as human labels.
CREATE TABLE IF NOT EXISTS finding_decisions (
    call_id     VARCHAR NOT NULL,
    rule_id     VARCHAR NOT NULL,
    start_s     DOUBLE,
    verdict     VARCHAR NOT NULL CHECK (verdict IN ('deducts', 'void')),
    source      VARCHAR NOT NULL CHECK (source IN ('review', 'appeal')),
    appeal_id   INTEGER,
    decided_by  VARCHAR NOT NULL,
    decided_at  TIMESTAMPTZ NOT NULL,
    comment     VARCHAR
);

-- ---- months at a year's scale (pipeline/store/call_time.py, docs/operations.md §8) ---------------

-- The call's start (calls.started_at) on each row of the big per-call tables: DuckDB's per-row-group
-- minimum and maximum of it let a month's reads skip the other months' rows, which a join by call_id
-- cannot. Set at insert; rows of older stores are back-filled once when the store is first opened
-- for writing.
ALTER TABLE utterances ADD COLUMN IF NOT EXISTS call_started_at TIMESTAMPTZ;
ALTER TABLE utterance_evidence ADD COLUMN IF NOT EXISTS call_started_at TIMESTAMPTZ;
ALTER TABLE char_timings ADD COLUMN IF NOT EXISTS call_started_at TIMESTAMPTZ;
ALTER TABLE findings ADD COLUMN IF NOT EXISTS call_started_at TIMESTAMPTZ;

-- ---- point look-ups at a year's scale (docs/operations.md §8) ------------------------------------

-- DuckDB answers `WHERE call_id = ?` with an index scan only from a one-column index: the composite
-- primary keys above are not used for it, and without these `callqa show`, the portal's call page
-- and a rescore read every row of each table (324 million character timings at a million calls).
-- A call's rows are contiguous, so each index holds one key per call and is small. Built once when
-- an older store is first opened for writing (minutes at a million calls).
CREATE INDEX IF NOT EXISTS recordings_call ON recordings (call_id);
CREATE INDEX IF NOT EXISTS utterances_call ON utterances (call_id);
CREATE INDEX IF NOT EXISTS char_timings_call ON char_timings (call_id);
CREATE INDEX IF NOT EXISTS voice_activity_call ON voice_activity (call_id);
CREATE INDEX IF NOT EXISTS audio_events_call ON audio_events (call_id);
CREATE INDEX IF NOT EXISTS utterance_rates_call ON utterance_rates (call_id);
CREATE INDEX IF NOT EXISTS interruptions_call ON interruptions (call_id);
CREATE INDEX IF NOT EXISTS holds_call ON holds (call_id);
CREATE INDEX IF NOT EXISTS dead_air_call ON dead_air (call_id);
CREATE INDEX IF NOT EXISTS utterance_evidence_call ON utterance_evidence (call_id);
CREATE INDEX IF NOT EXISTS scores_call ON scores (call_id);
CREATE INDEX IF NOT EXISTS findings_call ON findings (call_id);
CREATE INDEX IF NOT EXISTS finding_decisions_call ON finding_decisions (call_id);

-- ---- for analysts: the current state without knowing how history is kept ------------------------

-- Each call's current score (re-scoring keeps the old ones in `scores` with is_current = false).
CREATE OR REPLACE VIEW current_scores AS
SELECT c.call_id, c.agent_id, c.agent_name, c.started_at, c.duration_s, c.channels,
       s.score, s.fatal, s.scored_at, s.scorecard_hash,
       c.role_confidence < 0.6 AS roles_awaiting_review  -- pipeline.diarize.roles.ROLE_REVIEW_BELOW
FROM calls c JOIN scores s ON s.call_id = c.call_id AND s.is_current;

-- The findings of each call's current score, with the call's agent and start.
CREATE OR REPLACE VIEW current_findings AS
SELECT f.*, c.agent_id, c.started_at
FROM findings f
JOIN scores s ON s.call_id = f.call_id AND s.scored_at = f.scored_at AND s.is_current
JOIN calls c ON c.call_id = f.call_id;

COMMENT ON TABLE recordings IS '每个录音文件一行：状态（ok/failed/skipped）、原因、内容哈希、尝试次数';
COMMENT ON TABLE calls IS '每通已分析的通话一行：随录音信息、声道、时长、识别与分角色的方法';
COMMENT ON TABLE utterances IS '转写：每句话的说话人（agent 客服 / customer 客户）、起止秒数（从录音开头算）、文字';
COMMENT ON TABLE call_metrics IS '每通通话的指标：语速、振铃、接听延迟、静音、挂机方等，及每个数的来源';
COMMENT ON TABLE scores IS '评分历史：每次评分一行，is_current 标出当前的一次；当前评分见视图 current_scores';
COMMENT ON TABLE findings IS '评分的发现（每条规则的结论、证据、置信度、是否待人工复核）；当前的见视图 current_findings';
COMMENT ON TABLE audit_log IS '审计：每次导出、显示、报表、清除、角色决定，谁在何时做了什么';
COMMENT ON TABLE appeals IS '客服对扣分项的申诉：理由、状态（open 待处理 / upheld 维持 / overturned 撤销）、处理人与分数变化';
COMMENT ON TABLE finding_decisions IS '人工对扣分项的结论（复核确认/驳回、申诉撤销）；每次评分都会应用';
COMMENT ON VIEW current_scores IS '每通通话的当前评分（不必了解 is_current 与 (call_id, scored_at) 的关联）';
COMMENT ON VIEW current_findings IS '每通通话当前评分的全部发现';
COMMENT ON COLUMN calls.started_at IS '通话开始时间（带时区；会话时区为中心时区 input.timezone）';
COMMENT ON COLUMN calls.role_confidence IS '分角色的把握：低于 0.6 待人工确认（callqa roles），不计入排名';
COMMENT ON COLUMN findings.needs_review IS '待人工复核：确认前不扣分';
COMMENT ON COLUMN findings.deduction IS '扣分（未通过且无需复核时计入）';
COMMENT ON COLUMN scores.is_current IS '是否为该通话的当前评分';
