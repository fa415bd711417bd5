-- One row rewritten by the "does the database take writes again?" probe after a read-only or
-- full-disk error (see scheduler::wait_for_writable). Holds a timestamp, nothing else.
CREATE TABLE _probe (at TEXT NOT NULL);
