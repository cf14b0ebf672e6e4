"""One-off measurements kept to be rerun on other CPU families, not part of `make bench`:
graph forms (graph_ab), operator profiles, memory soaks, extract engines."""
