-- 002_jobs.sql: what the job service needs beside 001's tables: the columns the job list
-- filters and shows without parsing the spec, the failure's code and field, progress and ETA,
-- the run's info, the host that claimed a job; the append-only event log that the live event
-- stream replays (GET /jobs/{id}/events, Last-Event-ID); more memory and epoch figures; and a
-- job id sequence, so that an id is never handed out twice, even after the newest job was
-- deleted (SQLite reuses the largest INTEGER PRIMARY KEY; PostgreSQL would use a SEQUENCE).
--
-- Portable SQL as in 001: ALTER TABLE ... ADD COLUMN with constant defaults, ISO-8601 text
-- timestamps, DOUBLE PRECISION, BIGINT.

ALTER TABLE jobs ADD COLUMN arch TEXT NOT NULL DEFAULT '';        -- model.arch
ALTER TABLE jobs ADD COLUMN optimizer TEXT NOT NULL DEFAULT '';   -- optimizer.name
ALTER TABLE jobs ADD COLUMN dataset TEXT NOT NULL DEFAULT '';     -- dataset.name or train_file
ALTER TABLE jobs ADD COLUMN request TEXT;            -- the submitted body, canonical JSON (Idempotency-Key)
ALTER TABLE jobs ADD COLUMN error_code TEXT;         -- a failed job's error: code, field (message: `error`)
ALTER TABLE jobs ADD COLUMN error_field TEXT;
ALTER TABLE jobs ADD COLUMN steps_done BIGINT NOT NULL DEFAULT 0;   -- optimizer steps done
ALTER TABLE jobs ADD COLUMN total_steps BIGINT;                     -- known once a run has started
ALTER TABLE jobs ADD COLUMN eta_seconds DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN info TEXT;               -- the current run's trainer info (JSON)
ALTER TABLE jobs ADD COLUMN host TEXT;               -- the octetd (host:pid) running it
ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;     -- runs ended by an octetd crash
ALTER TABLE jobs ADD COLUMN last_event BIGINT NOT NULL DEFAULT 0;   -- seq of the newest event
ALTER TABLE jobs ADD COLUMN updated_at TEXT;

CREATE INDEX jobs_optimizer_id ON jobs (optimizer, id);

ALTER TABLE epochs ADD COLUMN eval_samples BIGINT;
ALTER TABLE epochs ADD COLUMN train_seconds DOUBLE PRECISION;
ALTER TABLE epochs ADD COLUMN eval_seconds DOUBLE PRECISION;
ALTER TABLE epochs ADD COLUMN train_samples_per_second DOUBLE PRECISION;

ALTER TABLE steps ADD COLUMN elapsed_seconds DOUBLE PRECISION;     -- since the run started

ALTER TABLE memory ADD COLUMN device TEXT;
ALTER TABLE memory ADD COLUMN state_maps_bytes BIGINT;             -- 8-bit quantization maps
ALTER TABLE memory ADD COLUMN state_total_bytes BIGINT;            -- codes + absmax + maps + fp32
ALTER TABLE memory ADD COLUMN driver_free_bytes BIGINT;            -- cudaMemGetInfo; NULL on the CPU
ALTER TABLE memory ADD COLUMN adam8bit_estimate_bytes BIGINT;      -- 2 B per parameter
ALTER TABLE memory ADD COLUMN adamw_bytes BIGINT;                  -- 8 B per parameter
ALTER TABLE memory ADD COLUMN final INTEGER NOT NULL DEFAULT 0;    -- 1: measured at the end

-- Every event of a job, in order: status changes, logged steps, epochs, memory figures. `seq`
-- is the SSE event id, 1, 2, 3, ... per job (jobs.last_event is the newest); `data` is the
-- event's JSON.
CREATE TABLE events (
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('status', 'step', 'epoch', 'memory')),
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE id_sequence (
    name  TEXT PRIMARY KEY,
    last  BIGINT NOT NULL
);
INSERT INTO id_sequence (name, last) SELECT 'jobs', COALESCE(MAX(id), 0) FROM jobs;
