"""`just explain`: a request's decision trace without a running proxy."""
