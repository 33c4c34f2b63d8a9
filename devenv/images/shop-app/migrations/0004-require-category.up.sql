-- 1.7.0-broken: a migration that fails halfway. The column is added, then NOT NULL fails on the
-- existing rows; the whole release's migration rolls back, so not even the column stays.
alter table products add column category text;
alter table products alter column category set not null;
