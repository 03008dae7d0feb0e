"""Settlement tables: commission contracts and their versions, pools, periods, statements."""
