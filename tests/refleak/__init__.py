"""Reference-leak checking (make refleak) and valgrind support (make valgrind)."""
