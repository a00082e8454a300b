-- 003_sweeps.sql: sweeps: a base spec and a grid of spec paths to values, run as one job per
-- combination; a model label and a revision counter on jobs. A job of a sweep carries the sweep's id and its own grid values (the path ->
-- value object that made its spec); deleting a sweep deletes its jobs (and, through them,
-- their history). Ids come from id_sequence, as jobs' do.

CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    base        TEXT NOT NULL,            -- the base spec as submitted (JSON)
    grid        TEXT NOT NULL,            -- the grid: {"path": [value, ...], ...} (JSON)
    created_at  TEXT NOT NULL
);

ALTER TABLE jobs ADD COLUMN sweep_id INTEGER REFERENCES sweeps (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN grid_values TEXT;   -- this job's {"path": value, ...} (JSON)
CREATE INDEX jobs_sweep_id ON jobs (sweep_id, id);

-- A short label of the job's model, for lists: the preset, the model directory, or the MLP's
-- layer sizes ("distilbert-base-uncased", "models/mine", "mlp 256-128").
ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT '';

-- Bumped by every change of a job's row; with last_event (bumped by every event), it tells a
-- reader whether the job it rendered before is still current.
ALTER TABLE jobs ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

INSERT INTO id_sequence (name, last) VALUES ('sweeps', 0);
