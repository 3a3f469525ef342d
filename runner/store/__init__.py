"""Everything a sweep keeps on disk, without paddle: the folder layout, the run files and the one
atomic writer, the registry (sqlite), the checkpoints."""
