-- 1.6.0: prices become integer cents and the text column goes. Irreversible: the original text
-- (its formatting, anything that was not a clean decimal) is gone with it.
alter table products add column price_cents integer;
update products set price_cents = round(price::numeric * 100);
alter table products alter column price_cents set not null;
alter table products drop column price;
