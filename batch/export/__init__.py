"""The `export` verb: customers from the directory to CSV, with a summary and an HTML report."""
