-- What the engine noticed while a step ran (a blocked event loop), as a JSON list.
ALTER TABLE step_executions ADD COLUMN warnings BYTEA;
