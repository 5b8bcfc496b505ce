//! compute handler (see the README's status table).
