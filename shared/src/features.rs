//! Feature extraction from a subject's transactions (filled in by the compute work).
