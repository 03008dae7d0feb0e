"""The partner shop's catalog: feed imports, products, stock and bank-client prices."""
