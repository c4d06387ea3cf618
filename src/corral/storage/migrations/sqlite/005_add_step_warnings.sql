-- What went wrong without failing a step (a handler that held the event loop).
ALTER TABLE step_executions ADD COLUMN warnings BLOB;
