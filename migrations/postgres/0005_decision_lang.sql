-- The comment's language (src/rules/lang.rs), detected once when the rules decide it: an
-- ISO 639-1 code, NULL when unknown (too short, emoji, a handle) and for rows older than
-- this migration. On `comments` for every comment the rules ran on (the report's "seen per
-- language"), on `decisions` for `igmod audit` and the hidden/deleted counts per language.
ALTER TABLE comments ADD COLUMN lang TEXT;
ALTER TABLE decisions ADD COLUMN lang TEXT;
