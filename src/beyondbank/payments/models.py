"""Bank core tables: customer deposit accounts, payments and the operations on them."""
