alter table products drop column sku;
