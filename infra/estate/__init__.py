"""Components of a province's estate and the stack config they are built from."""
