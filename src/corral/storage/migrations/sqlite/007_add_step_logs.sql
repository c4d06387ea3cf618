-- What a step's handler wrote with ctx.log (info and above, bounded), as a JSON list.
ALTER TABLE step_executions ADD COLUMN logs BLOB;
