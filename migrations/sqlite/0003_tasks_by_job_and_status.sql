-- A job's tasks by status: settling a job asks whether any task is left to run at every task's
-- end, and claims look for a job's queued and running tasks only. Without this index both read
-- every task of the job, which made a job's end quadratic in its symbols.
CREATE INDEX tasks_job_status ON tasks (job_id, status, id);
