"""The comparison of a sweep's finished runs and the files written from it; reads runner.store only."""
