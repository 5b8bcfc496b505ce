//! notifier handler (see the README's status table).
