"""Legacy data inheritance: the old provinces’ records moved, remapped and verified."""
