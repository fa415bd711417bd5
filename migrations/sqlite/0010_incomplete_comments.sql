-- 1 for a comment Meta sent without its text (stickers, GIFs) or its author's username (a
-- token without the comments permission): recorded, decided on what is there.
ALTER TABLE comments ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;
