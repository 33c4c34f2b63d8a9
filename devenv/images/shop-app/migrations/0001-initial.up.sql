create table products (id serial primary key, name text not null, price text not null);
insert into products (name, price) values ('apple', '1.20'), ('pear', '0.95'), ('plum', '2.10');
