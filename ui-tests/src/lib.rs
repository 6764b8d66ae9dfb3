//! Holds the trybuild tests of the Crucial macros in `tests/`; no library code.
