//! The scoring model port and the shipped fraud model (filled in by the compute work).
