//! request-api handler (see the README's status table).
