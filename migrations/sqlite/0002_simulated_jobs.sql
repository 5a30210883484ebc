-- Jobs created by a server in demo mode fetch from the built-in simulator: say so on the job.
ALTER TABLE jobs ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;
