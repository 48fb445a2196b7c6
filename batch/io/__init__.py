"""Reading input files and the cell quoting shared with the files we write."""
