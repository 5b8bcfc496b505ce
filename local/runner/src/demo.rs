//! Demo data for `make dev` (filled in once the data generator lands).
