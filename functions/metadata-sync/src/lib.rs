//! metadata-sync handler (see the README's status table).
