-- 1.5.0: every product gets a stock-keeping unit (additive: 1.4.2 ignores the column).
alter table products add column sku text;
update products set sku = 'SKU-' || lpad(id::text, 4, '0');
